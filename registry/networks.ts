import { addressProblem, ipToInt, parseCidr, type Pool } from '../allocator/addresses.ts';
import type { Queryable, Sql } from './db.ts';
import { InvalidRequestError, KeyConflictError, NotFoundError } from './errors.ts';

export interface Network extends Pool {
  id: string;
  name: string;
  /** The DNS servers its guests are told of, in order. */
  dns: string[];
  /** Addresses held by VMs now. */
  used: number;
  createdAt: string;
}

export type NetworkPool = Pool & { id: string; name: string };

export interface NewNetwork {
  name: string;
  cidr: string;
  gateway?: string | undefined;
  reserved?: Array<{ first: string; last: string }> | undefined;
  dns?: string[] | undefined;
}

interface NetworkRow {
  id: string;
  name: string;
  cidr: string;
  gateway: string | null;
  reserved: Array<{ first: string; last: string }>;
  dns: string[];
  created_at: Date;
}

const selectNetworks = (sql: Queryable) => sql`
  SELECT w.id, w.name, w.cidr::text AS cidr, host(w.gateway) AS gateway, w.created_at,
    ARRAY(SELECT host(d.a) FROM unnest(w.dns) WITH ORDINALITY AS d(a, i) ORDER BY d.i) AS dns,
    COALESCE((SELECT json_agg(json_build_object('first', host(r.first), 'last', host(r.last)) ORDER BY r.first)
              FROM network_reserved r WHERE r.network_id = w.id), '[]') AS reserved
  FROM networks w`;

function toNetwork(r: NetworkRow, used: number): Network {
  const { id, name, cidr, gateway, reserved, dns } = r;
  return { id, name, cidr, gateway, reserved, dns, used, createdAt: r.created_at.toISOString() };
}

// Other nodes may hold `ip:` keys that are not addresses (nodes.changeKeys takes any key):
// only well-formed ones are cast, inside a CASE so the cast never sees the others.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IP_KEY = `^ip:${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`;

// Any constant: serialises network creation.
const NETWORK_LOCK = 0x7a90_7402;

async function withUsage(sql: Queryable, rows: NetworkRow[]): Promise<Network[]> {
  const out: Network[] = [];
  for (const r of rows) {
    const [{ used } = { used: 0 }] = await sql<{ used: number }[]>`
      SELECT count(*)::int AS used FROM node_keys
      WHERE CASE WHEN key ~ ${IP_KEY} THEN substr(key, 4)::inet << ${r.cidr}::cidr ELSE false END`;
    out.push(toNetwork(r, used));
  }
  return out;
}

export async function createNetwork(sql: Sql, net: NewNetwork): Promise<Network> {
  try {
    parseCidr(net.cidr);
  } catch (err) {
    throw new InvalidRequestError('cidr', (err as Error).message);
  }
  const reserved = net.reserved ?? [];
  const pool: Pool = { cidr: net.cidr, gateway: null, reserved: [] };
  if (net.gateway !== undefined && addressProblem(pool, net.gateway)) {
    throw new InvalidRequestError('gateway', addressProblem(pool, net.gateway)!);
  }
  reserved.forEach((r, i) => {
    const bad = addressProblem(pool, r.first) ?? addressProblem(pool, r.last);
    if (bad) throw new InvalidRequestError(`reserved.${i}`, bad);
    if (ipToInt(r.first) > ipToInt(r.last))
      throw new InvalidRequestError(`reserved.${i}`, 'first is after last');
  });
  const dns = net.dns ?? [];
  dns.forEach((a, i) => {
    const bad = dnsProblem({ cidr: net.cidr, gateway: net.gateway ?? null, reserved }, a);
    if (bad) throw new InvalidRequestError(`dns.${i}`, bad);
  });
  try {
    await sql.begin(async (tx) => {
      // Concurrent inserts that the overlap constraint checks against each other can deadlock;
      // creating networks is rare, so they simply take turns.
      await tx`SELECT pg_advisory_xact_lock(${NETWORK_LOCK})`;
      const [row] = await tx<{ id: string }[]>`
        INSERT INTO networks (name, cidr, gateway, dns)
        VALUES (${net.name}, ${net.cidr}::cidr, ${net.gateway ?? null}::inet, ${dns}::inet[])
        RETURNING id`;
      await tx`CREATE SEQUENCE ${tx(cursorName(row!.id))} MINVALUE 0 START 0`;
      for (const r of reserved) {
        await tx`INSERT INTO network_reserved (network_id, first, last)
                 VALUES (${row!.id}, ${r.first}::inet, ${r.last}::inet)`;
      }
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '23505')
      throw new KeyConflictError(`network:${net.name}`, `network ${net.name}`, { cause: err });
    if (code === '23P01') {
      const [other] = await sql<{ name: string; cidr: string }[]>`
        SELECT name, cidr::text AS cidr FROM networks WHERE cidr && ${net.cidr}::cidr LIMIT 1`;
      throw new KeyConflictError(
        `cidr:${net.cidr}`,
        `network ${other?.name ?? '?'} (${other?.cidr ?? '?'})`,
        { cause: err },
      );
    }
    throw err;
  }
  return getNetwork(sql, net.name);
}

/**
 * Why `ip` cannot be a DNS server guests of `pool` are told of: an address no server answers
 * on (unspecified, loopback, link-local, multicast, broadcast), or one inside the pool that
 * could be handed to a VM (neither the gateway nor reserved). Null when it can.
 */
export function dnsProblem(pool: Pool, ip: string): string | null {
  const first = Number(ip.split('.')[0]);
  if (first === 0) return `${ip} is not an address a server answers on`;
  if (first === 127) return `${ip} is a loopback address: the guest would ask itself`;
  if (ip.startsWith('169.254.')) return `${ip} is link-local`;
  if (first >= 224) return `${ip} is multicast or reserved, not a server's address`;
  const { base, size } = parseCidr(pool.cidr);
  const n = ipToInt(ip);
  if (n < base || n >= base + size) return null;
  if (n === base || n === base + size - 1) return addressProblem(pool, ip);
  // Inside the pool, any other address addressProblem refuses is the gateway or reserved.
  if (addressProblem(pool, ip) !== null) return null;
  return `${ip} lies in ${pool.cidr} and could be handed to a VM: make it the gateway or reserve it`;
}

export async function listNetworks(sql: Sql): Promise<Network[]> {
  return withUsage(sql, await sql<NetworkRow[]>`${selectNetworks(sql)} ORDER BY w.name`);
}

export async function getNetwork(sql: Queryable, name: string): Promise<Network> {
  return (await withUsage(sql, [await networkRow(sql, name)]))[0]!;
}

/** The pool alone, without counting what is used: what a claim needs, cheaply. */
export async function getPool(sql: Queryable, name: string): Promise<NetworkPool> {
  const { id, cidr, gateway, reserved } = await networkRow(sql, name);
  return { id, name, cidr, gateway, reserved };
}

async function networkRow(sql: Queryable, name: string): Promise<NetworkRow> {
  const rows = await sql<NetworkRow[]>`${selectNetworks(sql)} WHERE w.name = ${name}`;
  if (!rows[0]) throw new NotFoundError('network', name);
  return rows[0];
}

// Where each claim's free-address search starts (claim_vm in migration 004 reads it too).
const cursorName = (networkId: string) => `network_cursor_${networkId.replaceAll('-', '')}`;
