import type { Connection } from '../../native/libvirt/index.ts';
import { DriverError, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { copyVolume, LANES, pairsDoneBefore, type VolumePair } from './volume-copy.ts';
import { locateVolumes, type LocatedVolume } from './volumes.ts';

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
  /**
   * Opens one more connection to the source's or the target's host, for a lane of the copy
   * (see VolumePair). Absent on simulated hosts, where each connection to a test URI is a
   * hypervisor of its own: every lane then shares the one connection.
   */
  openLane?: (side: 'source' | 'target') => Promise<Connection>;
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

type Side = 'source' | 'target';

/**
 * More connections to each host for a copy's lanes, LANES - 1 a side at most: one that cannot
 * be opened leaves its lane on the host's main connection, slower but the same copy.
 */
async function openLanes(move: DiskMoveOptions): Promise<Record<Side, Connection[]>> {
  const lanes: Record<Side, Connection[]> = { source: [], target: [] };
  if (!move.openLane) return lanes;
  for (let i = 1; i < LANES; i++) {
    for (const side of ['source', 'target'] as const) {
      const conn = await move.openLane(side).catch(() => null);
      if (conn) lanes[side].push(conn);
    }
  }
  return lanes;
}

/** `ref` on each of a side's connections, as located there. */
function handles(ref: VolumeRef, located: LocatedVolume[][], side: Side): LocatedVolume[] {
  return located.map((on) => {
    const v = on.find((l) => l.ref.name === ref.name && l.ref.pool === ref.pool);
    if (!v)
      throw new DriverError('not-found', `volume ${ref.pool}/${ref.name} is not on the ${side}`);
    return v;
  });
}

/**
 * Copies each of the VM's local volumes to the one of the same name provisioned on the
 * target, in order, each checked by digest before the next; an attempt after a lost one goes
 * on from the volume and offset it reported. Both sides are located as deprovision locates
 * them (vagoth's pools, named for this VM, inside the pool's directory), on every connection a
 * lane uses, so a copy never reads or writes another VM's volume.
 */
export async function copyDisks(move: DiskMoveOptions, progress: ProgressOptions): Promise<void> {
  const refs = localVolumes(move.volumes, move.sharedPools);
  if (refs.length === 0) return;
  const lanes = await openLanes(move);
  const held: LocatedVolume[][] = [];
  const locate = async (conns: Connection[]) => {
    const located: LocatedVolume[][] = [];
    for (const conn of conns) {
      located.push(await locateVolumes(conn, move.vmId, refs, move.pools));
      held.push(located[located.length - 1]!);
    }
    return located;
  };
  try {
    const sources = await locate([move.source, ...lanes.source]);
    const targets = await locate([move.target, ...lanes.target]);
    const pairs: VolumePair[] = refs.map((ref) => {
      const s = handles(ref, sources, 'source');
      const t = handles(ref, targets, 'target');
      // What is copied is the source's stored bytes (a qcow2 overlay's file, which the copy
      // grows the target's file to); a block device must hold them as it is.
      const capacity = s[0]!.capacity;
      if (!t[0]!.file && t[0]!.capacity < capacity) {
        throw new DriverError(
          'rejected',
          `volume ${ref.pool}/${ref.name} holds ${t[0]!.capacity} bytes on the target, ${capacity} on the source`,
        );
      }
      return { ref, source: s.map((v) => v.vol), target: t.map((v) => v.vol), capacity };
    });
    for (const pair of pairs.slice(pairsDoneBefore(pairs, progress.resumeFrom))) {
      progress.signal?.throwIfAborted();
      await copyVolume(pair, {
        ...progress,
        simulated: move.simulated,
        bytesPerSecond: move.bytesPerSecond,
      });
    }
  } finally {
    for (const v of held.flat()) v.vol.free();
    await Promise.allSettled([...lanes.source, ...lanes.target].map((c) => c.close()));
  }
}
