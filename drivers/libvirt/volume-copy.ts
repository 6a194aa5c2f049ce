import { createHash, type Hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as C, type StorageVol } from '../../native/libvirt/index.ts';
import { DriverError, type Progress, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { hasCode } from './errors.ts';

const MiB = 1024 ** 2;
/** Each download and upload is one short binding call of this many bytes at most. */
export const COPY_CHUNK = 8 * MiB;
const ZEROS = Buffer.alloc(COPY_CHUNK);

export function copyStep(ref: VolumeRef): string {
  return `migrate cold: copy ${ref.pool}/${ref.name}`;
}

export function verifyStep(ref: VolumeRef): string {
  return `migrate cold: verify ${ref.pool}/${ref.name}`;
}

/** One volume's two sides: its bytes on the source, the fresh volume on the target. */
export interface VolumePair {
  ref: VolumeRef;
  source: StorageVol;
  target: StorageVol;
  /** The source's capacity: every byte below it is copied and compared. */
  capacity: number;
}

export interface CopyOptions extends ProgressOptions {
  /** The test driver's volumes hold no bytes and take no streams: there a copy is skipped. */
  simulated: boolean;
  /** The copy goes no faster than this, so it leaves the hosts' guests some disk; 0: no cap. */
  bytesPerSecond?: number;
}

/** Whether `progress` is a copy or verify step of this very volume, as located. */
function isAbout(pair: VolumePair, progress: Progress | undefined): boolean {
  const v = progress?.volume;
  return (
    v !== undefined &&
    v.pool === pair.ref.pool &&
    v.name === pair.ref.name &&
    progress!.total === pair.capacity
  );
}

/**
 * Where the copy of `pair` goes on from: the offset an earlier attempt reported copied (it
 * reports one only once the target took every byte before it), all of it once it was
 * verifying, else 0.
 */
export function copiedBefore(pair: VolumePair, from: Progress | undefined): number {
  if (!from || !isAbout(pair, from)) return 0;
  if (from.step === verifyStep(pair.ref)) return pair.capacity;
  if (from.step !== copyStep(pair.ref)) return 0;
  const { done } = from;
  return Number.isSafeInteger(done) && done >= 0 && done <= pair.capacity ? done : 0;
}

/**
 * Which of `pairs` an earlier attempt had finished, copied and verified: those before the one
 * its last progress names (the copy goes through them in order).
 */
export function pairsDoneBefore(pairs: VolumePair[], from: Progress | undefined): number {
  const i = pairs.findIndex(
    (p) => isAbout(p, from) && [copyStep(p.ref), verifyStep(p.ref)].includes(from!.step),
  );
  return i < 0 ? 0 : i;
}

/** The bytes of [offset, offset + length) of `vol`, exactly that many or the copy fails. */
async function read(vol: StorageVol, offset: number, length: number): Promise<Buffer> {
  const data = await vol.download(offset, length);
  if (data.length !== length) {
    throw new DriverError(
      'rejected',
      `download of ${vol.name} answered ${data.length} bytes at ${offset}, not ${length}`,
    );
  }
  return data;
}

/**
 * Walks [from, end) of `vol` chunk by chunk, the next chunk's download under way while `each`
 * handles the current one: the source's reads overlap the target's writes.
 */
async function walk(
  vol: StorageVol,
  from: number,
  end: number,
  each: (data: Buffer, offset: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const fetch = (o: number) => {
    const p = read(vol, o, Math.min(COPY_CHUNK, end - o));
    p.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    return p;
  };
  let next = from < end ? fetch(from) : null;
  for (let offset = from; next !== null; offset += COPY_CHUNK) {
    const data = await next;
    next = offset + COPY_CHUNK < end ? fetch(offset + COPY_CHUNK) : null;
    signal?.throwIfAborted();
    await each(data, offset);
  }
}

async function digest(vol: StorageVol, end: number, hash: Hash, signal?: AbortSignal) {
  await walk(vol, 0, end, async (data) => void hash.update(data), signal);
}

/**
 * Copies one volume through libvirt's storage streams, from the offset an earlier attempt
 * reported on, then checks it: the SHA-256 of the source's bytes (hashed as they are copied,
 * those before a resumed offset read again) against that of a second download of the target.
 * All-zero chunks are not sent when `skipZeros` (the target is fresh, sparse and reads zero
 * there); should the digests differ anyway, the copy is made again in full. Only a copy whose
 * digests agree returns: the source may then be wiped.
 */
export async function copyVolume(pair: VolumePair, options: CopyOptions): Promise<void> {
  const { ref, capacity } = pair;
  const report = (step: string, done: number) =>
    options.onProgress?.({ step, done, total: capacity, volume: ref });
  const from = copiedBefore(pair, options.resumeFrom);
  report(copyStep(ref), from);
  try {
    if (await copyAndCheck(pair, from, true, options, report)) return;
  } catch (err) {
    if (!options.simulated || !hasCode(err, C.VIR_ERR_NO_SUPPORT)) throw unsupported(ref, err);
    report(`${copyStep(ref)}: skipped, a simulated volume holds no bytes`, capacity);
    return;
  }
  if (await copyAndCheck(pair, 0, false, options, report)) return;
  throw new DriverError(
    'rejected',
    `${copyStep(ref)}: the target's bytes differ from the source's after a full copy`,
  );
}

function unsupported(ref: VolumeRef, err: unknown): unknown {
  if (!hasCode(err, C.VIR_ERR_NO_SUPPORT)) return err;
  return new DriverError(
    'unsupported',
    `${copyStep(ref)}: the pool takes no storage streams, so the disk cannot move cold`,
    { cause: err, code: err.code },
  );
}

async function copyAndCheck(
  pair: VolumePair,
  from: number,
  skipZeros: boolean,
  options: CopyOptions,
  report: (step: string, done: number) => void,
): Promise<boolean> {
  const { ref, capacity, source, target } = pair;
  const hash = createHash('sha256');
  // Bytes an earlier attempt copied: hashed again from the source, which is powered off.
  await digest(source, from, hash, options.signal);
  const started = performance.now();
  const rate = options.bytesPerSecond ?? 0;
  await walk(
    source,
    from,
    capacity,
    async (data, offset) => {
      hash.update(data);
      if (!skipZeros || !data.equals(ZEROS.subarray(0, data.length))) {
        await target.upload(offset, data);
      }
      // Reported once the target took every byte before it: a resumed copy trusts them.
      report(copyStep(ref), offset + data.length);
      if (rate > 0) {
        const ahead = ((offset + data.length - from) / rate) * 1000 - (performance.now() - started);
        if (ahead > 0)
          await sleep(ahead, undefined, options.signal ? { signal: options.signal } : {});
      }
    },
    options.signal,
  );
  const sourceDigest = hash.digest('hex');
  report(verifyStep(ref), 0);
  const targetHash = createHash('sha256');
  await digest(target, capacity, targetHash, options.signal);
  return targetHash.digest('hex') === sourceDigest;
}
