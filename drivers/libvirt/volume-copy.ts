import { createHash, type Hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as C, type StorageVol } from '../../native/libvirt/index.ts';
import { DriverError, type Progress, type ProgressOptions, type VolumeRef } from '../driver.ts';
import { hasCode, uploadWhenFree } from './errors.ts';

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

/**
 * One volume's two sides: its bytes on the source, the fresh volume on the target, each as
 * handles on one or more connections to its host. A copy's lanes take turns over them: streams
 * on one connection wait on each other in libvirt's client, on several they flow side by side.
 */
export interface VolumePair {
  ref: VolumeRef;
  source: StorageVol[];
  target: StorageVol[];
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
  if (!Number.isSafeInteger(done) || done < 0 || done > pair.capacity) return 0;
  // A window's edge (every report but the last is one), so the digest's windows agree.
  return done === pair.capacity ? done : done - (done % COPY_CHUNK);
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

/** One window of a volume: its bytes, or null when every one of them is zero. */
type Window = Buffer | null;

const isZero = (data: Buffer) => data.equals(ZEROS.subarray(0, data.length));

/**
 * Reads windows of one volume: through sparse streams (the host sends data only, and no hole
 * is read from its disk) where the host and pool take them, else dense ones.
 */
function reader(vol: StorageVol) {
  let sparse = true;
  const exactly = (got: number, offset: number, length: number) => {
    if (got !== length) {
      throw new DriverError(
        'rejected',
        `download of ${vol.name} answered ${got} bytes at ${offset}, not ${length}`,
      );
    }
  };
  return async (offset: number, length: number): Promise<Window> => {
    if (sparse) {
      try {
        const window = await vol.downloadSparse(offset, length);
        exactly(window.length, offset, length);
        return window.data && !isZero(window.data) ? window.data : null;
      } catch (err) {
        const refused = [C.VIR_ERR_NO_SUPPORT, C.VIR_ERR_INVALID_ARG];
        if (!hasCode(err, ...refused, C.VIR_ERR_OPERATION_UNSUPPORTED)) throw err;
        sparse = false;
      }
    }
    const data = await vol.download(offset, length);
    exactly(data.length, offset, length);
    return isZero(data) ? null : data;
  };
}

/**
 * A volume's digest: SHA-256 over each window that is not all zero, its offset first. Equal
 * for two volumes of one size exactly when their bytes are, however either holds its zeros
 * (a hole, or zeros written), and it costs nothing for a window all zero: no bytes hashed.
 * Windows are COPY_CHUNK long from offset 0 on both sides, so their edges agree.
 */
function hashWindow(hash: Hash, window: Window, offset: number): void {
  if (window === null) return;
  const at = Buffer.alloc(8);
  at.writeBigUInt64BE(BigInt(offset));
  hash.update(at).update(window);
}

/**
 * Chunks a walk keeps under way at once: each is a download (and for a copy, an upload and a
 * read back) on libuv's pool, so one stream's round trips overlap another's. Three leave the
 * pool's fourth thread to the process's other calls.
 */
export const LANES = 3;

/**
 * Walks [from, end) of a volume chunk by chunk, up to LANES chunks under way at once, the k-th
 * chunk read through `vols[k % vols.length]` (handles on the volume, each on a connection of
 * its own) and handed to `each` with that lane's number as soon as it arrives; `inOrder` then
 * sees what `each` made of every chunk in the volume's order, so what it reports is a prefix
 * that is whole.
 */
async function walk<T>(
  vols: StorageVol[],
  from: number,
  end: number,
  steps: {
    each: (window: Window, offset: number, length: number, lane: number) => Promise<T> | T;
    inOrder: (done: T, offset: number, length: number) => Promise<void> | void;
  },
  signal?: AbortSignal,
): Promise<void> {
  const readers = vols.map(reader);
  const lengthAt = (offset: number) => Math.min(COPY_CHUNK, end - offset);
  const start = async (offset: number) => {
    const lane = Math.floor((offset - from) / COPY_CHUNK) % readers.length;
    return steps.each(
      await readers[lane]!(offset, lengthAt(offset)),
      offset,
      lengthAt(offset),
      lane,
    );
  };
  const under: { offset: number; task: Promise<T> }[] = [];
  let next = from;
  const fill = () => {
    while (under.length < LANES && next < end && !signal?.aborted) {
      const task = start(next);
      task.catch(() => undefined); // awaited below, in order; never unhandled meanwhile
      under.push({ offset: next, task });
      next += COPY_CHUNK;
    }
  };
  fill();
  try {
    for (let head = under.shift(); head !== undefined; head = under.shift()) {
      const done = await head.task;
      signal?.throwIfAborted();
      await steps.inOrder(done, head.offset, lengthAt(head.offset));
      fill();
    }
  } finally {
    // A walk cut short leaves no call of its own on the volumes: a retry that starts while an
    // upload is still open finds the target volume in use.
    await Promise.allSettled(under.map((u) => u.task));
  }
  signal?.throwIfAborted();
}

async function digest(vols: StorageVol[], end: number, hash: Hash, signal?: AbortSignal) {
  await walk(
    vols,
    0,
    end,
    { each: (w) => w, inOrder: (w, offset) => hashWindow(hash, w, offset) },
    signal,
  );
}

/**
 * Copies one volume through libvirt's storage streams, from the offset an earlier attempt
 * reported on, and checks it as it goes: each window, once uploaded, is downloaded again from
 * the target, and the source's digest (hashWindow) is compared with the target's (the windows
 * before a resumed offset are read again from both sides). The read back runs on the target's
 * host while the next windows are read on the source's, so the check costs little wall time.
 * Downloads are sparse where the host can: a hole is neither read nor sent. All-zero windows
 * are not sent when `skipZeros` (the target is fresh, sparse and reads zero there); should the
 * digests differ anyway, the copy is made again in full. Only a copy whose digests agree
 * returns: the source may then be wiped.
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
  const { signal } = options;
  const sourceHash = createHash('sha256');
  const targetHash = createHash('sha256');
  // Bytes an earlier attempt copied and read back: hashed again from both sides (the source
  // is powered off, the target not yet in use).
  await Promise.all([
    digest(source, from, sourceHash, signal),
    digest(target, from, targetHash, signal),
  ]);
  const readBack = target.map(reader);
  const started = performance.now();
  const rate = options.bytesPerSecond ?? 0;
  await walk(
    source,
    from,
    capacity,
    {
      each: async (window, offset, length, lane) => {
        const side = lane % target.length;
        if (window !== null || !skipZeros) {
          const data = window ?? ZEROS.subarray(0, length);
          await uploadWhenFree(() => target[side]!.upload(offset, data), signal);
        }
        return { window, written: await readBack[side]!(offset, length) };
      },
      inOrder: async ({ window, written }, offset, length) => {
        hashWindow(sourceHash, window, offset);
        hashWindow(targetHash, written, offset);
        // Reported once the target took and gave back every byte before it: a resumed copy
        // trusts them, and reads them again from both sides for its digests.
        report(copyStep(ref), offset + length);
        if (rate > 0) {
          const due = ((offset + length - from) / rate) * 1000;
          const ahead = due - (performance.now() - started);
          if (ahead > 0) await sleep(ahead, undefined, signal ? { signal } : {});
        }
      },
    },
    signal,
  );
  report(verifyStep(ref), capacity);
  return targetHash.digest('hex') === sourceHash.digest('hex');
}
