import { withActor, type ActorOptions } from './context.ts';
import type { Queryable, Sql } from './db.ts';
import { NotFoundError } from './errors.ts';
import { claimKeys } from './node-keys.ts';
import type { VolumeRef } from './types.ts';

export type { VolumeRef };

/**
 * A VM's volumes are recorded as its unique keys `vol:<host>:<pool>/<name>`: the host the
 * volume lives on, its pool there and its name. The UNIQUE constraint on keys means no two VMs
 * ever hold one volume; a wipe only ever acts on a volume the registry says this VM holds on
 * that host; and a volume left on a host the VM no longer runs on (a move's source until it is
 * wiped, a host the monitor found without the VM) stays on record, to be wiped, until it is.
 * Host names hold no ':' (api/schemas.ts), so the first one ends the host.
 */
export function volumeKey(host: string, ref: VolumeRef): string {
  return `vol:${host}:${ref.pool}/${ref.name}`;
}

/** A recorded volume: `host` null for a key written before keys named their host. */
export interface RecordedVolume extends VolumeRef {
  host: string | null;
}

/** The volumes a VM's keys record, in key order. */
export function recordedVolumes(keys: readonly string[]): RecordedVolume[] {
  return keys.flatMap((key) => {
    const m = /^vol:(?:([^:/]+):)?([^/]+)\/(.+)$/.exec(key);
    return m ? [{ host: m[1] ?? null, pool: m[2]!, name: m[3]! }] : [];
  });
}

/**
 * The VM's volumes on `host`, in key order. A key without a host (none are left once
 * 011_volumes_record_host.sql ran, but a VM on no host may keep one) counts as on the VM's
 * own host, `current`.
 */
export function volumesOn(
  keys: readonly string[],
  host: string | null,
  current: string | null,
): VolumeRef[] {
  return recordedVolumes(keys)
    .filter((v) => (v.host ?? current) === host && host !== null)
    .map(({ pool, name }) => ({ pool, name }));
}

/** Every host the VM has volumes recorded on, its own (`current`) last. */
export function hostsWithVolumes(keys: readonly string[], current: string | null): string[] {
  const hosts = new Set(
    recordedVolumes(keys).flatMap((v) => {
      const host = v.host ?? current;
      return host === null ? [] : [host];
    }),
  );
  const others = [...hosts].filter((h) => h !== current).sort();
  return current !== null && hosts.has(current) ? [...others, current] : others;
}

/**
 * Claims the keys of the volumes on `host` for the VM before anything is created there, all
 * or nothing. Keys the VM already holds are claimed again without complaint, so a retry
 * succeeds.
 */
export async function claimVolumes(
  sql: Sql,
  vmId: string,
  host: string,
  refs: readonly VolumeRef[],
  actor?: ActorOptions,
): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const found = await tx`SELECT 1 FROM nodes WHERE id = ${vmId} AND type = 'vm' FOR KEY SHARE`;
    if (found.length === 0) throw new NotFoundError('vm', vmId);
    await claimKeys(
      tx,
      vmId,
      refs.map((ref) => volumeKey(host, ref)),
    );
  });
}

/** Deletes the VM's `vol:` keys on `host`, or all of them; a retry is a no-op. */
export async function forgetVolumes(tx: Queryable, vmId: string, host?: string): Promise<void> {
  if (host === undefined) {
    await tx`DELETE FROM node_keys WHERE node_id = ${vmId} AND key LIKE 'vol:%'`;
  } else {
    await tx`DELETE FROM node_keys WHERE node_id = ${vmId} AND starts_with(key, ${`vol:${host}:`})`;
  }
}

/**
 * Gives back the VM's `vol:` keys (once those volumes are wiped): those on `host`, or every
 * one. A retry is a no-op.
 */
export async function releaseVolumes(
  sql: Sql,
  vmId: string,
  actor?: ActorOptions,
  host?: string,
): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, (tx) =>
    forgetVolumes(tx, vmId, host),
  );
}

/**
 * Forgets every volume recorded on `host` of a VM that is not on it: the host is fenced and
 * being evacuated, so it is never called again and what its disks hold is off the record (the
 * operator wipes them before it serves again). Its own VMs' keys go as each is evacuated
 * (commitMigration). Answers how many keys went.
 */
export async function forgetVolumesOnHost(
  sql: Sql,
  host: string,
  actor?: ActorOptions,
): Promise<number> {
  return withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const gone = await tx`
      DELETE FROM node_keys k USING nodes v
      WHERE v.id = k.node_id AND v.type = 'vm' AND starts_with(k.key, ${`vol:${host}:`})
        AND v.parent_id IS DISTINCT FROM (SELECT id FROM nodes WHERE name = ${host} AND type = 'host')
      RETURNING k.key`;
    return gone.length;
  });
}
