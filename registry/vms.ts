import { jsonb, type Queryable, type Sql } from './db.ts';
import {
  InvalidRequestError,
  KeyConflictError,
  NotFoundError,
  StateConflictError,
} from './errors.ts';
import { addressProblem } from '../allocator/addresses.ts';
import { getPool, nextFreeAddress, searchStart, type NetworkPool } from './networks.ts';
import type {
  NicDefinition,
  OperationRef,
  PlacementConstraints,
  Vm,
  VmDefinition,
  VmState,
} from './types.ts';

export interface VmRequest {
  name: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  nics: Array<{ network: string; ip?: string | undefined; mac?: string | undefined }>;
  tags: Record<string, string>;
  placement: PlacementConstraints;
}

interface VmRow {
  id: string;
  name: string;
  definition: VmDefinition;
  metadata: { state: VmState; operation?: OperationRef; error?: string };
  tags: Record<string, string>;
  host: string | null;
  keys: string[];
  created_at: Date;
}

function toVm(r: VmRow): Vm {
  return {
    id: r.id,
    name: r.name,
    state: r.metadata.state,
    host: r.host,
    definition: r.definition,
    keys: r.keys,
    tags: r.tags,
    operation: r.metadata.operation ?? null,
    error: r.metadata.error ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

const selectVms = (sql: Sql) => sql`
  SELECT v.id, v.name, v.definition, v.metadata, v.tags, v.created_at, h.name AS host,
    COALESCE((SELECT array_agg(k.key ORDER BY k.key) FROM node_keys k WHERE k.node_id = v.id),
             '{}') AS keys
  FROM nodes v LEFT JOIN nodes h ON h.id = v.parent_id`;

export async function getVm(sql: Sql, name: string): Promise<Vm> {
  const rows = await sql<VmRow[]>`${selectVms(sql)} WHERE v.type = 'vm' AND v.name = ${name}`;
  if (!rows[0]) throw new NotFoundError('vm', name);
  return toVm(rows[0]);
}

export async function getVmById(sql: Sql, id: string): Promise<Vm> {
  const rows = await sql<VmRow[]>`${selectVms(sql)} WHERE v.type = 'vm' AND v.id = ${id}`;
  if (!rows[0]) throw new NotFoundError('vm', id);
  return toVm(rows[0]);
}

export async function listVms(sql: Sql): Promise<Vm[]> {
  const rows = await sql<VmRow[]>`${selectVms(sql)} WHERE v.type = 'vm' ORDER BY v.name`;
  return rows.map(toVm);
}

export function nicKeys(nics: NicDefinition[]): string[] {
  return nics.flatMap((n) => [...(n.ip ? [`ip:${n.ip}`] : []), `mac:${n.mac.toLowerCase()}`]);
}

async function holderOf(sql: Queryable, key: string): Promise<string> {
  const rows = await sql<{ name: string; type: string }[]>`
    SELECT n.name, n.type FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE k.key = ${key}`;
  return rows[0] ? `${rows[0].type} ${rows[0].name}` : 'another node';
}

const MAC_ATTEMPTS = 8;

/**
 * Records the VM and claims its name and every key in one transaction: all or nothing.
 * Idempotent for the operation that created it, so a retried activity gets the same VM.
 */
export async function claimVm(
  sql: Sql,
  request: VmRequest,
  operation: OperationRef,
  generateMac: () => string,
): Promise<Vm> {
  // Networks are read, and address searches given their start, before the transaction: inside
  // it, a second connection from the same pool could wait on the transactions holding them all.
  const pools = await Promise.all(
    request.nics.map(async (nic, i) => {
      const network = await getPool(sql, nic.network).catch((err: unknown) => {
        throw err instanceof NotFoundError
          ? new InvalidRequestError(`nics.${i}.network`, `no network named ${nic.network}`)
          : err;
      });
      return { network, start: nic.ip === undefined ? await searchStart(sql, network) : 0 };
    }),
  );
  const id = await sql.begin(async (tx) => {
    const existing = await tx<{ id: string; type: string; metadata: VmRow['metadata'] }[]>`
      SELECT id, type, metadata FROM nodes WHERE name = ${request.name} FOR UPDATE`;
    const holder = existing[0];
    if (holder) {
      if (holder.type === 'vm' && holder.metadata.operation?.runId === operation.runId)
        return holder.id;
      throw new KeyConflictError(`name:${request.name}`, `${holder.type} ${request.name}`);
    }
    const nics: NicDefinition[] = request.nics.map((n) => ({
      network: n.network,
      mac: n.mac ?? '',
    }));
    const definition: VmDefinition = {
      vcpus: request.vcpus,
      memoryMiB: request.memoryMiB,
      diskGiB: request.diskGiB,
      nics,
      placement: request.placement,
    };
    const metadata = { state: 'pending', operation };
    const inserted = await tx<{ id: string }[]>`
      INSERT INTO nodes (name, type, definition, metadata, tags)
      VALUES (${request.name}, 'vm', ${jsonb(tx, definition)}, ${jsonb(tx, metadata)},
              ${jsonb(tx, request.tags)})
      ON CONFLICT (name) DO NOTHING RETURNING id`;
    const vmId = inserted[0]?.id;
    if (!vmId) throw new KeyConflictError(`name:${request.name}`, `vm ${request.name}`);

    for (const [i, nic] of nics.entries()) {
      const asked = request.nics[i]!;
      const ip = await claimAddress(tx, vmId, pools[i]!, asked.ip, `nics.${i}`);
      nic.ip = ip;
      if (asked.mac) await claimKey(tx, vmId, `mac:${asked.mac.toLowerCase()}`);
      else nic.mac = await claimGeneratedMac(tx, vmId, generateMac);
    }
    await tx`UPDATE nodes SET definition = ${jsonb(tx, definition)} WHERE id = ${vmId}`;
    return vmId;
  });
  return getVmById(sql, id);
}

/** The given address if the network allows it, or the next free one; claimed as `ip:<address>`. */
async function claimAddress(
  tx: Queryable,
  vmId: string,
  pool: { network: NetworkPool; start: number },
  ip: string | undefined,
  field: string,
): Promise<string> {
  if (ip !== undefined) {
    const problem = addressProblem(pool.network, ip);
    if (problem) throw new InvalidRequestError(`${field}.ip`, problem);
    await claimKey(tx, vmId, `ip:${ip}`);
    return ip;
  }
  // A lost race for a free address is retried with the next one; a full network is final.
  for (;;) {
    const candidate = await nextFreeAddress(tx, pool.network, pool.start);
    if (candidate === null)
      throw new InvalidRequestError(`${field}.network`, `network ${pool.network.name} is full`);
    const rows = await tx`
      INSERT INTO node_keys (key, node_id) VALUES (${`ip:${candidate}`}, ${vmId})
      ON CONFLICT (key) DO NOTHING RETURNING key`;
    if (rows.length > 0) return candidate;
  }
}

async function claimKey(sql: Queryable, nodeId: string, key: string): Promise<void> {
  const rows = await sql`
    INSERT INTO node_keys (key, node_id) VALUES (${key}, ${nodeId})
    ON CONFLICT (key) DO NOTHING RETURNING key`;
  if (rows.length === 0) throw new KeyConflictError(key, await holderOf(sql, key));
}

async function claimGeneratedMac(
  sql: Queryable,
  nodeId: string,
  generate: () => string,
): Promise<string> {
  for (let attempt = 0; attempt < MAC_ATTEMPTS; attempt++) {
    const mac = generate().toLowerCase();
    const rows = await sql`
      INSERT INTO node_keys (key, node_id) VALUES (${`mac:${mac}`}, ${nodeId})
      ON CONFLICT (key) DO NOTHING RETURNING key`;
    if (rows.length > 0) return mac;
  }
  throw new Error(`could not generate a free MAC address in ${MAC_ATTEMPTS} attempts`);
}

/**
 * Moves the VM to `to` only from one of `from` (compare-and-set), so two operations
 * racing on one VM cannot both proceed.
 */
export async function transitionVm(
  sql: Sql,
  id: string,
  from: readonly VmState[],
  to: VmState,
  patch: { operation?: OperationRef; error?: string } = {},
): Promise<void> {
  const rows = await sql`
    UPDATE nodes SET metadata = metadata || ${jsonb(sql, { ...patch, state: to })}, updated_at = now()
    WHERE id = ${id} AND type = 'vm' AND metadata->>'state' IN ${sql(from as VmState[])}
    RETURNING id`;
  if (rows.length > 0) return;
  const vm = await getVmById(sql, id);
  if (vm.state === to) return; // a retried transition that already landed
  throw new StateConflictError(`vm ${vm.name}`, vm.state, to);
}

/** Removes the VM; its keys go with it (ON DELETE CASCADE), and so does its share of its host. */
export async function deleteVm(sql: Sql, id: string): Promise<void> {
  await sql`DELETE FROM nodes WHERE id = ${id} AND type = 'vm'`;
}
