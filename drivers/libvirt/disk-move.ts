import type { Connection } from '../../native/libvirt/index.ts';
import { DriverError, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { copyVolume, pairsDoneBefore, type VolumePair } from './volume-copy.ts';
import { locateVolumes } from './volumes.ts';

export interface DiskMoveOptions {
  source: Connection;
  target: Connection;
  vmId: string;
  volumes: VolumeRef[];
  /** The host's vagoth pools: a volume outside them is never read or written. */
  pools: readonly string[];
  /** Pools both hosts reach as the same storage: their volumes stay where they are. */
  sharedPools: readonly string[];
  simulated: boolean;
  /** Cap on the copy, bytes a second; 0: none. */
  bytesPerSecond: number;
}

/** A VM's volumes that live on one host's own storage, and so must move with it. */
export function localVolumes(volumes: VolumeRef[], sharedPools: readonly string[]): VolumeRef[] {
  return volumes.filter((v) => !sharedPools.includes(v.pool));
}

/** How a move treats the VM's disks (see MigrationContext.disks). */
export function diskPlan(
  volumes: VolumeRef[],
  sharedPools: readonly string[],
): 'none' | 'copy' | 'mixed' {
  const local = localVolumes(volumes, sharedPools).length;
  if (local === 0) return 'none';
  return local === volumes.length ? 'copy' : 'mixed';
}

/**
 * Copies each of the VM's local volumes to the one of the same name provisioned on the
 * target, in order, each checked by digest before the next; an attempt after a lost one goes
 * on from the volume and offset it reported. Both sides are located as deprovision locates
 * them (vagoth's pools, named for this VM, inside the pool's directory), so a copy never reads
 * or writes another VM's volume.
 */
export async function copyDisks(move: DiskMoveOptions, progress: ProgressOptions): Promise<void> {
  const refs = localVolumes(move.volumes, move.sharedPools);
  if (refs.length === 0) return;
  const sources = await locateVolumes(move.source, move.vmId, refs, move.pools);
  try {
    const targets = await locateVolumes(move.target, move.vmId, refs, move.pools);
    try {
      const pairs: VolumePair[] = [];
      for (const ref of refs) {
        const s = sources.find((v) => v.ref.name === ref.name && v.ref.pool === ref.pool);
        const t = targets.find((v) => v.ref.name === ref.name && v.ref.pool === ref.pool);
        if (!s)
          throw new DriverError('not-found', `volume ${ref.pool}/${ref.name} is not on the source`);
        if (!t)
          throw new DriverError('not-found', `volume ${ref.pool}/${ref.name} is not on the target`);
        if (t.capacity < s.capacity) {
          throw new DriverError(
            'rejected',
            `volume ${ref.pool}/${ref.name} holds ${t.capacity} bytes on the target, ${s.capacity} on the source`,
          );
        }
        pairs.push({ ref, source: s.vol, target: t.vol, capacity: s.capacity });
      }
      for (const pair of pairs.slice(pairsDoneBefore(pairs, progress.resumeFrom))) {
        progress.signal?.throwIfAborted();
        await copyVolume(pair, {
          ...progress,
          simulated: move.simulated,
          bytesPerSecond: move.bytesPerSecond,
        });
      }
    } finally {
      for (const v of targets) v.vol.free();
    }
  } finally {
    for (const v of sources) v.vol.free();
  }
}
