import { addressProblem } from '../allocator/addresses.ts';
import { actorSource, type ActorOptions } from './context.ts';
import { jsonb, type Queryable, type Sql } from './db.ts';
import { InvalidRequestError, KeyConflictError, NotFoundError } from './errors.ts';
import { getPool, nextFreeAddress, searchStart, type NetworkPool } from './networks.ts';
import type { NicDefinition, OperationRef, Vm, VmDefinition } from './types.ts';
import { getVmById, holderOf, nicKeys, type VmRequest } from './vms.ts';

// A generated MAC or a free address taken by a concurrent claim between our search and our
// insert: the whole claim is tried again with fresh ones, this many times at most.
const CLAIM_ATTEMPTS = 8;

class LostRace extends Error {}

interface NicPool {
  network: NetworkPool;
  start: number;
}

/**
 * Records the VM and claims its name and every key (IPs, MACs) in one transaction: all or
 * nothing. Idempotent for the operation that created it, so a retried activity gets the same VM.
 */
export async function claimVm(
  sql: Sql,
  request: VmRequest,
  operation: OperationRef,
  generateMac: () => string,
  actor?: ActorOptions,
): Promise<Vm> {
  for (let attempt = 1; ; attempt++) {
    // Networks are read, and address searches given their start, before the transaction:
    // inside it, a second pooled connection could wait on the transactions holding them all.
    const pools = await nicPools(sql, request);
    try {
      return await sql.begin((tx) => claimOnce(tx, request, operation, pools, generateMac, actor));
    } catch (err) {
      if (!(err instanceof LostRace)) throw err;
      if (attempt === CLAIM_ATTEMPTS) {
        throw new Error(`${request.name}: lost ${attempt} races for free keys`, { cause: err });
      }
    }
  }
}

/** The NIC's network, once it is known to exist and to allow the NIC's IP (if it names one). */
export async function checkedPool(
  sql: Queryable,
  nic: VmRequest['nics'][number],
  index: number,
): Promise<NetworkPool> {
  const network = await getPool(sql, nic.network).catch((err: unknown) => {
    throw err instanceof NotFoundError
      ? new InvalidRequestError(`nics.${index}.network`, `no network named ${nic.network}`)
      : err;
  });
  const problem = nic.ip === undefined ? null : addressProblem(network, nic.ip);
  if (problem) throw new InvalidRequestError(`nics.${index}.ip`, problem);
  return network;
}

async function nicPools(sql: Sql, request: VmRequest): Promise<NicPool[]> {
  return Promise.all(
    request.nics.map(async (nic, i) => {
      const network = await checkedPool(sql, nic, i);
      return { network, start: nic.ip === undefined ? await searchStart(sql, network) : 0 };
    }),
  );
}

async function claimOnce(
  tx: Queryable,
  request: VmRequest,
  operation: OperationRef,
  pools: NicPool[],
  generateMac: () => string,
  actor: ActorOptions | undefined,
): Promise<Vm> {
  const nics: NicDefinition[] = [];
  for (const [i, asked] of request.nics.entries()) {
    const pool = pools[i]!;
    // Never an address another NIC of this VM asked for or was given.
    const picked = [
      ...request.nics.flatMap((n) => (n.ip ? [n.ip] : [])),
      ...nics.flatMap((n) => (n.ip ? [n.ip] : [])),
    ];
    const ip = asked.ip ?? (await nextFreeAddress(tx, pool.network, pool.start, picked));
    if (ip === null)
      throw new InvalidRequestError(`nics.${i}.network`, `network ${pool.network.name} is full`);
    nics.push({ network: asked.network, ip, mac: (asked.mac ?? generateMac()).toLowerCase() });
  }
  const definition: VmDefinition = {
    vcpus: request.vcpus,
    memoryMiB: request.memoryMiB,
    diskGiB: request.diskGiB,
    nics,
    placement: request.placement,
  };
  const metadata = { state: 'pending', operation };
  const [row] = await tx<{ id: string; created_at: Date }[]>`
    INSERT INTO nodes (name, type, definition, metadata, tags)
    SELECT ${request.name}, 'vm', ${jsonb(tx, definition)}, ${jsonb(tx, metadata)}, ${jsonb(tx, request.tags)}
    FROM ${actorSource(tx, actor)}
    ON CONFLICT (name) DO NOTHING RETURNING id, created_at`;
  if (!row) {
    // The name is taken: by this very operation (a retried activity gets its VM), or not.
    const [holder] = await tx<{ id: string; type: string; run: string | null }[]>`
      SELECT id, type, metadata->'operation'->>'runId' AS run FROM nodes WHERE name = ${request.name}`;
    if (holder?.type === 'vm' && holder.run === operation.runId) return getVmById(tx, holder.id);
    throw new KeyConflictError(`name:${request.name}`, `${holder?.type ?? 'node'} ${request.name}`);
  }

  const keys = nicKeys(nics);
  const claimed = await tx<{ key: string }[]>`
    INSERT INTO node_keys (key, node_id) SELECT k, ${row.id} FROM unnest(${keys}::text[]) k
    ON CONFLICT (key) DO NOTHING RETURNING key`;
  const won = new Set(claimed.map((c) => c.key));
  const given = new Set(
    request.nics.flatMap((n) => [
      ...(n.ip ? [`ip:${n.ip}`] : []),
      ...(n.mac ? [`mac:${n.mac.toLowerCase()}`] : []),
    ]),
  );
  for (const key of keys) {
    if (won.has(key)) continue;
    // A key the caller asked for is a conflict; one we picked was taken meanwhile: pick again.
    if (given.has(key)) throw new KeyConflictError(key, await holderOf(tx, key));
    throw new LostRace(key);
  }
  return {
    id: row.id,
    name: request.name,
    state: 'pending',
    host: null,
    definition,
    keys: [...keys].sort(),
    tags: request.tags,
    operation,
    error: null,
    createdAt: row.created_at.toISOString(),
  };
}
