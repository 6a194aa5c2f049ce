import path from 'node:path';
import {
  constants as C,
  type Connection,
  type StoragePool,
  type StorageVol,
} from '../../native/libvirt/index.ts';
import type { VmDefinition, VmImage } from '../../registry/types.ts';
import { DriverError, type Progress, type VolumeRef } from '../driver.ts';
import { xmlEscape } from './domain-xml.ts';
import { hasCode } from './errors.ts';

const GiB = 1024 ** 3;

/** The name of a VM's volume: the id in it is what lets deprovision tell it is this VM's. */
export function volumeName(vmId: string, index: number): string {
  return `vagoth-${vmId}-disk${index}.img`;
}

/** The name of a VM's cloud-init seed: a volume of the VM's, wiped and deleted with its disks. */
export function seedName(vmId: string): string {
  return `vagoth-${vmId}-seed.iso`;
}

export function isNamedFor(vmId: string, name: string): boolean {
  const prefix = `vagoth-${vmId}-`;
  return name.startsWith(prefix) && /^(disk\d+\.img|seed\.iso)$/.test(name.slice(prefix.length));
}

/** The seed volume's size: an ISO of the seed's three files fits many times over. */
export const SEED_BYTES = 4 * 1024 ** 2;

/** What one of a VM's volumes is made as. */
export type VolumeLayout =
  | { kind: 'root'; bytes: number; image: VmImage | null }
  | { kind: 'blank'; bytes: number }
  | { kind: 'seed'; bytes: number };

/**
 * A VM's volumes, in the order they are attached: the root disk (an overlay on its image, else
 * blank) when it has one, its extra blank disks, then the seed of a VM from an image.
 */
export function volumeLayout(
  definition: Pick<VmDefinition, 'diskGiB' | 'image' | 'disks'>,
): VolumeLayout[] {
  const layout: VolumeLayout[] = [];
  const { diskGiB, image } = definition;
  if (diskGiB > 0 || image) {
    layout.push({
      kind: 'root',
      bytes: Math.max(diskGiB * GiB, image?.virtualSize ?? 0),
      image: image ?? null,
    });
  }
  for (const d of definition.disks ?? []) layout.push({ kind: 'blank', bytes: d.sizeGiB * GiB });
  if (image) layout.push({ kind: 'seed', bytes: SEED_BYTES });
  return layout;
}

/** The names of the volumes of `volumeLayout`, in its order. */
export function layoutNames(vmId: string, layout: VolumeLayout[]): string[] {
  let disk = 0;
  return layout.map((v) => (v.kind === 'seed' ? seedName(vmId) : volumeName(vmId, disk++)));
}

function volumeXml(name: string, bytes: number, backing?: { path: string; format: string }) {
  const store = backing
    ? `  <backingStore><path>${xmlEscape(backing.path)}</path><format type='${xmlEscape(backing.format)}'/></backingStore>\n`
    : '';
  return `<volume>
  <name>${xmlEscape(name)}</name>
  <capacity unit='bytes'>${xmlEscape(bytes)}</capacity>
  <allocation>0</allocation>
  <target><format type='${backing ? 'qcow2' : 'raw'}'/></target>
${store}</volume>
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

export async function freeing<T extends { free(): void }, R>(
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

export async function lookupPool(conn: Connection, name: string): Promise<StoragePool> {
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

export async function findVolume(pool: StoragePool, name: string): Promise<StorageVol | null> {
  try {
    return await pool.lookupVolumeByName(name);
  } catch (err) {
    if (hasCode(err, C.VIR_ERR_NO_STORAGE_VOL)) return null;
    throw err;
  }
}

/** Where a root disk's image is on this host (image-cache.ts's imagePath), for its overlay. */
export interface ImageBase {
  path: string;
  format: VmImage['format'];
  /** The pool holds files: the root is a qcow2 overlay; otherwise a full copy. */
  fileBacked: boolean;
  vol: () => Promise<StorageVol>;
}

/**
 * Creates one volume of a VM as its layout says; an existing one is kept. A root disk from an
 * image is a qcow2 overlay on the host's copy of the image (`base`), or a full copy of it where
 * the pool holds no files; a seed is written with `seed`, the ISO the caller built. One an
 * attempt lost mid-way may have left half-built the caller wipes and deletes first
 * (LibvirtDriver.provision). libvirt refuses to wipe or delete a volume it is still building,
 * so that waits for the build under way (by failing, to be retried), never races it.
 */
export async function provisionVolume(
  conn: Connection,
  ref: VolumeRef,
  layout: VolumeLayout,
  made: { base?: ImageBase | null; seed?: Buffer },
): Promise<void> {
  if (!(layout.bytes > 0)) {
    throw new DriverError('rejected', `definition.diskGiB: ${ref.name} needs a size or an image`);
  }
  await freeing(lookupPool(conn, ref.pool), async (pool) => {
    const found = await findVolume(pool, ref.name);
    if (found) return found.free();
    try {
      if (layout.kind === 'seed') return await createSeed(pool, ref, made.seed);
      if (layout.kind === 'blank' || !layout.image) {
        return (await pool.createVolumeXML(volumeXml(ref.name, layout.bytes))).free();
      }
      const { base } = made;
      if (!base) {
        throw new DriverError(
          'rejected',
          `definition.image: image ${layout.image.name} is not copied to this host`,
        );
      }
      if (base.fileBacked) {
        const xml = volumeXml(ref.name, layout.bytes, base);
        return (await pool.createVolumeXML(xml)).free();
      }
      // A byte copy of a qcow2 file, attached raw, is no disk a guest could boot.
      if (base.format !== 'raw') {
        throw new DriverError(
          'rejected',
          `definition.image: pool ${ref.pool} holds no files, so it takes raw images only, not ${layout.image.name} (${base.format})`,
        );
      }
      await freeing(base.vol(), async (source) => {
        (await pool.createVolumeXMLFrom(volumeXml(ref.name, layout.bytes), source)).free();
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

/** A seed volume, holding the ISO given (none: blank). */
async function createSeed(pool: StoragePool, ref: VolumeRef, iso: Buffer | undefined) {
  if (iso && iso.length > SEED_BYTES) {
    throw new DriverError('rejected', `the seed of ${ref.name} is over ${SEED_BYTES} bytes`);
  }
  const vol = await pool.createVolumeXML(volumeXml(ref.name, SEED_BYTES));
  try {
    if (iso && iso.length > 0) await vol.upload(0, iso);
  } finally {
    vol.free();
  }
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
  /**
   * The bytes the volume holds as stored, which a wipe zeroes and a move copies: a file's own
   * size (an overlay's too), a block device's capacity.
   */
  capacity: number;
  /** A file, which a copy may grow; a block device has the size it has. */
  file: boolean;
}

/**
 * A volume's stored extent: for a file, its size on disk (`<physical>`), whatever format its
 * header claims (a guest may write any header onto its raw disk, and libvirt would report the
 * size that header says); for a block device, its capacity.
 */
export function storedExtent(xml: string, capacity: number): number {
  if (!/^<volume type=['"]file['"]/.test(xml.trimStart())) return capacity;
  const physical = /<physical(?:\s+unit=['"]bytes['"])?>(\d+)<\/physical>/.exec(xml)?.[1];
  // libvirt's test driver reports none (its volumes hold no bytes).
  return physical === undefined ? capacity : Number(physical);
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
      located.push({ ref, vol: found.vol, capacity: 0, file: false });
      const where = await found.vol.getPath();
      if (found.target === null || !isInside(found.target, where)) {
        throw new DriverError(
          'not-ours',
          `volume ${ref.pool}/${ref.name} lies at ${where}, outside its pool's ${found.target ?? 'unknown'} directory`,
        );
      }
      const { capacity } = await found.vol.getInfo();
      const xml = await found.vol.getXMLDesc();
      const last = located[located.length - 1]!;
      last.capacity = storedExtent(xml, capacity);
      last.file = /^<volume type=['"]file['"]/.test(xml.trimStart());
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
