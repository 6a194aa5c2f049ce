import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  constants as C,
  type Connection,
  type StoragePool,
  type StorageVol,
} from '../../native/libvirt/index.ts';
import type { VmDefinition } from '../../registry/types.ts';
import { DriverError, type Progress, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { xmlEscape } from './domain-xml.ts';
import { hasCode, uploadWhenFree } from './errors.ts';

/** The name of a VM's volume: the id in it is what lets deprovision tell it is this VM's. */
export function volumeName(vmId: string, index: number): string {
  return `vagoth-${vmId}-disk${index}.img`;
}

export function isNamedFor(vmId: string, name: string): boolean {
  const prefix = `vagoth-${vmId}-disk`;
  return name.startsWith(prefix) && /^\d+\.img$/.test(name.slice(prefix.length));
}

const GiB = 1024 ** 3;

function volumeXml(name: string, bytes: number): string {
  return `<volume>
  <name>${xmlEscape(name)}</name>
  <capacity unit='bytes'>${xmlEscape(bytes)}</capacity>
  <allocation>0</allocation>
  <target><format type='raw'/></target>
</volume>
`;
}

/** A pool's target directory, from its XML. */
export function poolTargetPath(xml: string): string | null {
  const raw = /<target>\s*<path>([^<]*)<\/path>/.exec(xml)?.[1];
  if (raw === undefined) return null;
  return raw.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" : '&',
  );
}

/** Whether `file` lies below `dir`, after resolving `.` and `..` segments. */
export function isInside(dir: string, file: string): boolean {
  const d = path.posix.resolve('/', dir);
  return path.posix.resolve('/', file).startsWith(d === '/' ? '/' : `${d}/`);
}

async function freeing<T extends { free(): void }, R>(
  object: Promise<T>,
  fn: (o: T) => Promise<R>,
): Promise<R> {
  const o = await object;
  try {
    return await fn(o);
  } finally {
    o.free();
  }
}

async function lookupPool(conn: Connection, name: string): Promise<StoragePool> {
  try {
    return await conn.lookupStoragePoolByName(name);
  } catch (err) {
    if (!hasCode(err, C.VIR_ERR_NO_STORAGE_POOL)) throw err;
    throw new DriverError('rejected', `storage pool ${name} does not exist on ${conn.uri}`, {
      cause: err,
      code: err.code,
    });
  }
}

async function findVolume(pool: StoragePool, name: string): Promise<StorageVol | null> {
  try {
    return await pool.lookupVolumeByName(name);
  } catch (err) {
    if (hasCode(err, C.VIR_ERR_NO_STORAGE_VOL)) return null;
    throw err;
  }
}

/**
 * Creates one volume of a VM, from its image when it names one. An existing one is kept, or,
 * with `existing: 'rebuild'`, deleted and created again: the caller's say for a volume that an
 * attempt lost mid-way may have left half-built (a clone cut short). libvirt refuses to delete
 * a volume it is still building, so a rebuild waits for the build under way (by failing, to
 * be retried), never races it.
 */
export async function provisionVolume(
  conn: Connection,
  ref: VolumeRef,
  definition: VmDefinition,
  existing: 'keep' | 'rebuild' = 'keep',
): Promise<void> {
  const { diskGiB, image } = definition;
  if (!(diskGiB > 0) && !image) {
    throw new DriverError('rejected', `definition.diskGiB: ${ref.name} needs a size or an image`);
  }
  // Cloning another VM's disk would hand its data to this one.
  if (image && /^vagoth-[0-9a-f-]{36}-disk\d+\.img$/.test(image)) {
    throw new DriverError('rejected', `definition.image: ${image} is a VM's volume`);
  }
  await freeing(lookupPool(conn, ref.pool), async (pool) => {
    const found = await findVolume(pool, ref.name);
    if (found && existing === 'keep') return found.free();
    if (found)
      await freeing(Promise.resolve(found), (v) => v.delete(C.VIR_STORAGE_VOL_DELETE_NORMAL));
    try {
      if (!image) return (await pool.createVolumeXML(volumeXml(ref.name, diskGiB * GiB))).free();
      const source = await findVolume(pool, image);
      if (!source) {
        throw new DriverError(
          'rejected',
          `definition.image: no volume ${image} in pool ${ref.pool}`,
        );
      }
      await freeing(Promise.resolve(source), async (s) => {
        const { capacity } = await s.getInfo();
        if (diskGiB > 0 && diskGiB * GiB < capacity) {
          throw new DriverError(
            'rejected',
            `definition.diskGiB: ${diskGiB} GiB is smaller than image ${image} (${capacity} bytes)`,
          );
        }
        const xml = volumeXml(ref.name, Math.max(diskGiB * GiB, capacity));
        (await pool.createVolumeXMLFrom(xml, s)).free();
      });
    } catch (err) {
      // Created meanwhile by a concurrent attempt for this same VM (the name holds its id);
      // drivers disagree on the error number for that, the pool does not.
      const now = await findVolume(pool, ref.name).catch(() => null);
      if (!now) throw err;
      now.free();
    }
  });
}

/** Refuses (not-ours) any volume outside the configured pools or not named for this VM. */
export function checkOwned(vmId: string, refs: VolumeRef[], pools: readonly string[]): void {
  for (const ref of refs) {
    if (!pools.includes(ref.pool)) {
      throw new DriverError(
        'not-ours',
        `volume ${ref.pool}/${ref.name}: pool ${ref.pool} is not one of this host's vagoth pools`,
      );
    }
    if (!isNamedFor(vmId, ref.name)) {
      throw new DriverError(
        'not-ours',
        `volume ${ref.pool}/${ref.name} is not named for VM ${vmId}`,
      );
    }
  }
}

export interface LocatedVolume {
  ref: VolumeRef;
  vol: StorageVol;
  capacity: number;
}

/**
 * The VM's recorded volumes that still exist, each checked to be vagoth's for this VM: in a
 * configured pool, named for the VM id and inside its pool's target directory. Any that is not
 * refuses the whole request before anything is touched.
 */
export async function locateVolumes(
  conn: Connection,
  vmId: string,
  refs: VolumeRef[],
  pools: readonly string[],
): Promise<LocatedVolume[]> {
  checkOwned(vmId, refs, pools);
  const located: LocatedVolume[] = [];
  try {
    for (const ref of refs) {
      const found = await freeing(lookupPool(conn, ref.pool), async (pool) => {
        const target = poolTargetPath(await pool.getXMLDesc());
        const vol = await findVolume(pool, ref.name);
        return vol && { vol, target };
      });
      if (!found) continue;
      located.push({ ref, vol: found.vol, capacity: 0 });
      const where = await found.vol.getPath();
      if (found.target === null || !isInside(found.target, where)) {
        throw new DriverError(
          'not-ours',
          `volume ${ref.pool}/${ref.name} lies at ${where}, outside its pool's ${found.target ?? 'unknown'} directory`,
        );
      }
      located[located.length - 1]!.capacity = (await found.vol.getInfo()).capacity;
    }
    return located;
  } catch (err) {
    for (const v of located) v.vol.free();
    throw err;
  }
}

const MiB = 1024 ** 2;
const WINDOW = 64 * MiB;

/**
 * How a volume is zeroed: `libvirt` is libvirt's own wipe (virStorageVolWipe) where the pool
 * has one, streamed zeros where it has none; `stream` is always streamed zeros.
 */
export type WipeMethod = 'libvirt' | 'stream';

export interface WipeOptions extends ProgressOptions {
  /**
   * The test driver can neither wipe nor upload, and its volumes hold no bytes: there a volume
   * is deleted without zeroing (the progress says so). Anywhere else that refuses.
   */
  simulated: boolean;
  /** `libvirt` by default. */
  method?: WipeMethod;
  /** Streamed zeros go no faster than this, so a wipe leaves the host's guests some disk; 0: no cap. */
  bytesPerSecond?: number;
}

export const PROVISION_STEP = 'provision';

/**
 * How many of a VM's `total` volumes an earlier attempt reported created, in order (the
 * provision step's progress), else 0: only those are known to be whole.
 */
export function provisionedBefore(from: Progress | undefined, total: number): number {
  if (from?.step !== PROVISION_STEP || from.total !== total) return 0;
  return doneWithin(from);
}

/** A progress's `done` when it is a whole count within its `total`, else 0: start over. */
function doneWithin({ done, total }: Progress): number {
  return Number.isSafeInteger(done) && done >= 0 && done <= total ? done : 0;
}

export function wipeStep(ref: VolumeRef): string {
  return `wipe ${ref.pool}/${ref.name}`;
}

/**
 * Where the wipe of `v` starts: the offset an earlier attempt reported zeroed (it reports one
 * only once libvirt has finished the stream up to there), else 0. Only a progress that names
 * this very volume, as located, with its capacity, counts: `v` is one of the VM's recorded
 * volumes, checked to be vagoth's, so a resumed wipe never skips bytes of any other.
 */
export function resumeOffset(v: LocatedVolume, from: Progress | undefined): number {
  if (!from?.volume || from.step !== wipeStep(v.ref)) return 0;
  if (from.volume.pool !== v.ref.pool || from.volume.name !== v.ref.name) return 0;
  return from.total === v.capacity ? doneWithin(from) : 0;
}

/**
 * Zeroes a volume, then deletes it. Resumable: an attempt after a crash goes on from the
 * progress the last one reported. libvirt's own wipe reports none until it ends, so a wipe cut
 * short there starts again from the first byte; streamed zeros go on from the last offset.
 */
export async function wipeAndDelete(v: LocatedVolume, options: WipeOptions): Promise<void> {
  const step = wipeStep(v.ref);
  const from = resumeOffset(v, options.resumeFrom);
  options.onProgress?.({ step, done: from, total: v.capacity, volume: v.ref });
  if (from < v.capacity) await zero(v, from, step, options);
  options.signal?.throwIfAborted();
  try {
    await v.vol.delete(C.VIR_STORAGE_VOL_DELETE_NORMAL);
  } catch (err) {
    if (!hasCode(err, C.VIR_ERR_NO_STORAGE_VOL)) throw err;
  }
}

async function zero(v: LocatedVolume, from: number, step: string, options: WipeOptions) {
  // A partial offset only ever comes from streamed zeros: those go on from there.
  if (from === 0 && (options.method ?? 'libvirt') === 'libvirt') {
    try {
      await v.vol.wipe(C.VIR_STORAGE_VOL_WIPE_ALG_ZERO);
      options.onProgress?.({ step, done: v.capacity, total: v.capacity, volume: v.ref });
      return;
    } catch (err) {
      if (!hasCode(err, C.VIR_ERR_NO_SUPPORT)) throw err;
    }
  }
  await zeroThroughStream(v, from, step, options);
}

/** About a second of writing at the cap, so progress (and heartbeats) stay frequent. */
function windowFor(bytesPerSecond: number | undefined): number {
  if (!bytesPerSecond) return WINDOW;
  return Math.min(WINDOW, Math.max(MiB, Math.floor(bytesPerSecond / MiB) * MiB));
}

async function zeroThroughStream(
  v: LocatedVolume,
  from: number,
  step: string,
  options: WipeOptions,
): Promise<void> {
  const window = windowFor(options.bytesPerSecond);
  const started = performance.now();
  for (let offset = from; offset < v.capacity; offset += window) {
    options.signal?.throwIfAborted();
    const length = Math.min(window, v.capacity - offset);
    try {
      await uploadWhenFree(() => v.vol.uploadZeros(offset, length), options.signal);
    } catch (err) {
      if (!hasCode(err, C.VIR_ERR_NO_SUPPORT) || offset > from) throw err;
      if (options.simulated) {
        options.onProgress?.({
          step: `${step}: skipped, a simulated volume holds no bytes`,
          done: v.capacity,
          total: v.capacity,
        });
        return;
      }
      throw new DriverError(
        'unsupported',
        `${step}: the pool can neither wipe nor take an upload, so the volume is left in place`,
        { cause: err, code: err.code },
      );
    }
    // Reported only once libvirt finished the stream: a resumed wipe trusts every byte before it.
    options.onProgress?.({ step, done: offset + length, total: v.capacity, volume: v.ref });
    if (options.bytesPerSecond) {
      const due = ((offset + length - from) / options.bytesPerSecond) * 1000;
      const ahead = due - (performance.now() - started);
      if (ahead > 0 && offset + length < v.capacity) {
        await sleep(ahead, undefined, options.signal ? { signal: options.signal } : {});
      }
    }
  }
}
