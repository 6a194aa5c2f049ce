import path from 'node:path';
import {
  constants as C,
  type Connection,
  type StoragePool,
  type StorageVol,
} from '../../native/libvirt/index.ts';
import type { VmDefinition } from '../../registry/types.ts';
import { DriverError, type Progress, type VolumeRef } from '../driver.ts';
import { xmlEscape } from './domain-xml.ts';
import { hasCode } from './errors.ts';

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
 * Creates one volume of a VM, from its image when it names one; an existing one is kept. One
 * an attempt lost mid-way may have left half-built (a clone cut short) the caller wipes and
 * deletes first (LibvirtDriver.provision). libvirt refuses to wipe or delete a volume it is
 * still building, so that waits for the build under way (by failing, to be retried), never
 * races it.
 */
export async function provisionVolume(
  conn: Connection,
  ref: VolumeRef,
  definition: VmDefinition,
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
    if (found) return found.free();
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
export function doneWithin({ done, total }: Progress): number {
  return Number.isSafeInteger(done) && done >= 0 && done <= total ? done : 0;
}
