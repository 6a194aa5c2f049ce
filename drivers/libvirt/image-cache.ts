import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import {
  constants as C,
  type Connection,
  type StoragePool,
  type StorageVol,
} from '../../native/libvirt/index.ts';
import type { VmImage } from '../../registry/types.ts';
import { DriverError, type Progress, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { xmlEscape } from './domain-xml.ts';
import { hasCode } from './errors.ts';
import { findVolume, freeing, isInside, lookupPool, poolTargetPath } from './volumes.ts';

/** The name of a host's copy of an image: the image's id, so it is never another's. */
export function imageVolumeName(image: Pick<VmImage, 'id' | 'format'>): string {
  return `vagoth-image-${image.id}.${image.format}`;
}

const IMAGE_NAME =
  /^vagoth-image-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(raw|qcow2)$/;

export const IMAGE_COPY_STEP = 'image-copy';
export const IMAGE_CHECK_STEP = 'image-check';

/** Bytes per upload or download stream: a few MiB, as the binding asks. */
const CHUNK = 8 * 1024 ** 2;

/** The pool types whose volumes are files qemu-img can put an overlay on. */
const FILE_POOLS = new Set(['dir', 'fs', 'netfs']);

/** A pool's type, from its XML. */
export function poolType(xml: string): string | null {
  return /<pool\s+type=['"]([a-z0-9-]+)['"]/.exec(xml)?.[1] ?? null;
}

/** Where an earlier attempt of this very copy had got to (its heartbeat), else 0. */
function copiedBefore(from: Progress | undefined, image: VmImage, ref: VolumeRef): number {
  if (from?.step !== IMAGE_COPY_STEP || from.total !== image.sizeBytes) return 0;
  if (from.volume?.pool !== ref.pool || from.volume.name !== ref.name) return 0;
  const { done } = from;
  if (!Number.isSafeInteger(done) || done < 0 || done > image.sizeBytes) return 0;
  return done - (done % CHUNK);
}

/**
 * Copies an image file of the worker's store into `ref` on the host (created raw, the size of
 * the file), going on from where an earlier attempt's heartbeat says it got; then reads the
 * whole copy back and checks it against the image's digest. A copy that does not match is
 * made again from byte 0, once; a second mismatch fails `rejected`. A simulated host's volume
 * holds no bytes: it is only created.
 */
export async function copyImage(
  conn: Connection,
  ref: VolumeRef,
  image: VmImage,
  file: string,
  options: ProgressOptions & { simulated: boolean },
): Promise<void> {
  checkImageName(ref, image);
  await freeing(lookupPool(conn, ref.pool), async (pool) => {
    const existing = await findVolume(pool, ref.name);
    const resumed = existing ? copiedBefore(options.resumeFrom, image, ref) : 0;
    const vol = existing ?? (await createRaw(pool, ref.name, image.sizeBytes));
    await freeing(Promise.resolve(vol), async (v) => {
      await checkInside(pool, v, ref);
      if (options.simulated) return;
      // Already whole (a pool another host shares, which copied it there): nothing to write.
      if (existing && resumed === 0 && (await readBack(v, ref, image, options)) === image.sha256) {
        return;
      }
      for (const from of [resumed, 0]) {
        await upload(v, ref, image, file, from, options);
        const digest = await readBack(v, ref, image, options);
        if (digest === image.sha256) return;
        if (from === 0) {
          throw new DriverError(
            'rejected',
            `the copy of image ${image.name} on this host reads back with SHA-256 ${digest}, not ${image.sha256}`,
          );
        }
      }
    });
  });
}

/** Deletes the host's copy of an image, if it is there (no wipe: it holds the image only). */
export async function removeImage(conn: Connection, ref: VolumeRef, image: VmImage) {
  checkImageName(ref, image);
  // A pool the host does not define holds no copy.
  const found = await conn.lookupStoragePoolByName(ref.pool).catch((err: unknown) => {
    if (hasCode(err, C.VIR_ERR_NO_STORAGE_POOL)) return null;
    throw err;
  });
  if (!found) return;
  await freeing(Promise.resolve(found), async (pool) => {
    const vol = await findVolume(pool, ref.name);
    if (!vol) return;
    await freeing(Promise.resolve(vol), async (v) => {
      await checkInside(pool, v, ref);
      await v.delete();
    });
  });
}

/** The host's path of its copy of the image, for an overlay's backing store; null if absent. */
export async function imagePath(
  conn: Connection,
  ref: VolumeRef,
): Promise<{ path: string; fileBacked: boolean } | null> {
  return freeing(lookupPool(conn, ref.pool), async (pool) => {
    const vol = await findVolume(pool, ref.name);
    if (!vol) return null;
    return freeing(Promise.resolve(vol), async (v) => ({
      path: await v.getPath(),
      fileBacked: FILE_POOLS.has(poolType(await pool.getXMLDesc()) ?? ''),
    }));
  });
}

function checkImageName(ref: VolumeRef, image: VmImage): void {
  if (ref.name !== imageVolumeName(image) || !IMAGE_NAME.test(ref.name)) {
    throw new DriverError(
      'not-ours',
      `volume ${ref.pool}/${ref.name} is not image ${image.id}'s copy`,
    );
  }
}

async function checkInside(pool: StoragePool, vol: StorageVol, ref: VolumeRef): Promise<void> {
  const target = poolTargetPath(await pool.getXMLDesc());
  const where = await vol.getPath();
  if (target !== null && !isInside(target, where)) {
    throw new DriverError('not-ours', `volume ${ref.pool}/${ref.name} lies outside its pool`);
  }
}

async function createRaw(pool: StoragePool, name: string, bytes: number): Promise<StorageVol> {
  return pool.createVolumeXML(`<volume>
  <name>${xmlEscape(name)}</name>
  <capacity unit='bytes'>${xmlEscape(bytes)}</capacity>
  <allocation>0</allocation>
  <target><format type='raw'/></target>
</volume>
`);
}

async function upload(
  vol: StorageVol,
  ref: VolumeRef,
  image: VmImage,
  file: string,
  from: number,
  options: ProgressOptions,
): Promise<void> {
  const total = image.sizeBytes;
  const report = (done: number) =>
    options.onProgress?.({ step: IMAGE_COPY_STEP, done, total, volume: ref });
  report(from);
  const handle = await open(file, 'r');
  try {
    if ((await handle.stat()).size !== total) {
      throw new DriverError(
        'rejected',
        `image ${image.name}'s file in the store is not ${total} bytes`,
      );
    }
    // One chunk read ahead while the last is uploaded.
    const read = async (at: number) => {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, total - at));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      return buffer.subarray(0, bytesRead);
    };
    let next = from < total ? read(from) : null;
    for (let at = from; next;) {
      options.signal?.throwIfAborted();
      const chunk = await next;
      if (chunk.length === 0)
        throw new DriverError('rejected', `image ${image.name}'s file ended early`);
      const after = at + chunk.length;
      next = after < total ? read(after) : null;
      await vol.upload(at, chunk);
      at = after;
      report(at);
    }
  } finally {
    await handle.close();
  }
}

async function readBack(
  vol: StorageVol,
  ref: VolumeRef,
  image: VmImage,
  options: ProgressOptions,
): Promise<string> {
  const hash = createHash('sha256');
  const total = image.sizeBytes;
  let next = total > 0 ? vol.download(0, Math.min(CHUNK, total)) : null;
  for (let at = 0; next;) {
    options.signal?.throwIfAborted();
    const chunk = await next;
    if (chunk.length === 0) break;
    at += chunk.length;
    next = at < total ? vol.download(at, Math.min(CHUNK, total - at)) : null;
    hash.update(chunk);
    options.onProgress?.({ step: IMAGE_CHECK_STEP, done: at, total, volume: ref });
  }
  return hash.digest('hex');
}
