import { withActor, type ActorOptions } from './context.ts';
import type { Sql } from './db.ts';
import { NotFoundError } from './errors.ts';
import { claimKeys } from './node-keys.ts';
import type { VolumeRef } from './types.ts';

export type { VolumeRef };

/**
 * A VM's volumes are recorded as its unique keys `vol:<pool>/<name>`: the UNIQUE constraint
 * on keys means no two VMs ever hold one volume, and a wipe only ever acts on a volume the
 * registry says this VM holds.
 */
export function volumeKey(ref: VolumeRef): string {
  return `vol:${ref.pool}/${ref.name}`;
}

/** The volumes a VM's keys record, in key order. */
export function volumesOf(keys: readonly string[]): VolumeRef[] {
  return keys.flatMap((key) => {
    const m = /^vol:([^/]+)\/(.+)$/.exec(key);
    return m ? [{ pool: m[1]!, name: m[2]! }] : [];
  });
}

/**
 * Claims the volumes' keys for the VM before anything is created on a host, all or nothing.
 * Keys the VM already holds are claimed again without complaint, so a retry succeeds.
 */
export async function claimVolumes(
  sql: Sql,
  vmId: string,
  refs: readonly VolumeRef[],
  actor?: ActorOptions,
): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const found = await tx`SELECT 1 FROM nodes WHERE id = ${vmId} AND type = 'vm' FOR KEY SHARE`;
    if (found.length === 0) throw new NotFoundError('vm', vmId);
    await claimKeys(tx, vmId, refs.map(volumeKey));
  });
}

/** Gives back every `vol:` key of the VM (once its volumes are wiped); a retry is a no-op. */
export async function releaseVolumes(sql: Sql, vmId: string, actor?: ActorOptions): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    await tx`DELETE FROM node_keys WHERE node_id = ${vmId} AND key LIKE 'vol:%'`;
  });
}
