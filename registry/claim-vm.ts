import { addressProblem } from '../allocator/addresses.ts';
import type { ActorOptions } from './context.ts';
import { jsonb, type Queryable, type Sql } from './db.ts';
import { InvalidRequestError, KeyConflictError, NotFoundError } from './errors.ts';
import { holdImage, imageParts } from './images.ts';
import { getPool, type NetworkPool } from './networks.ts';
import type { OperationRef, Vm, VmDefinition } from './types.ts';
import { nicKeys, type VmRequest } from './vms.ts';

// SQLSTATEs of claim_vm (migration 004).
const KEY_CONFLICT = 'VG002';
const INVALID = 'VG003';

/**
 * Records the VM and claims its name and every key (IPs, MACs) in one transaction: all or
 * nothing. Idempotent for the operation that created it, so a retried activity gets the same VM.
 * The database picks free addresses and MACs (claim_vm in migration 004): one round trip, and
 * a pick lost to a concurrent claim is picked again inside it.
 */
export async function claimVm(
  sql: Sql,
  request: VmRequest,
  operation: OperationRef,
  actor?: ActorOptions,
): Promise<Vm> {
  const vm: Omit<VmDefinition, 'nics'> = {
    vcpus: request.vcpus,
    memoryMiB: request.memoryMiB,
    diskGiB: request.diskGiB,
    placement: request.placement,
    ...(request.image ? { image: request.image } : {}),
    ...(request.disks?.length ? { disks: request.disks } : {}),
    ...(request.guest ? { guest: request.guest } : {}),
  };
  // undefined fields are dropped by JSON, so `nic ? 'ip'` is true only for a given address.
  const nics = request.nics.map(({ network, ip, mac }) => ({ network, ip, mac }));
  try {
    // The image is held (FOR SHARE) while the VM that uses it is recorded, so a deletion
    // (beginImageDeletion, FOR UPDATE) either sees the VM or is seen here.
    const [row] = await sql.begin(async (tx) => {
      for (const part of request.image ? imageParts(request.image) : []) {
        await holdImage(tx, part.id, part.name);
      }
      return tx<{ id: string; created_at: Date; definition: VmDefinition }[]>`
        SELECT id, created_at, definition FROM claim_vm(
          ${request.name}, ${jsonb(tx, vm)}, ${jsonb(tx, nics)},
          ${jsonb(tx, { state: 'pending', operation })}, ${jsonb(tx, request.tags)},
          ${operation.runId}, ${actor?.actor ?? null}, ${actor?.operation ?? null})`;
    });
    const { id, created_at, definition } = row!;
    return {
      id,
      name: request.name,
      state: 'pending',
      host: null,
      definition,
      keys: nicKeys(definition.nics).sort(),
      tags: request.tags,
      operation,
      error: null,
      createdAt: created_at.toISOString(),
    };
  } catch (err) {
    const e = err as { code?: string; message: string; detail?: string };
    if (e.code === KEY_CONFLICT) throw new KeyConflictError(e.message, e.detail ?? 'another node');
    if (e.code === INVALID) throw new InvalidRequestError(e.message, e.detail ?? 'invalid');
    throw err;
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
