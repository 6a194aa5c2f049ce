import { setTimeout as sleep } from 'node:timers/promises';
import { constants as C } from '../../native/libvirt/index.ts';
import {
  callBack,
  DriverError,
  type ProgressOptions,
  type VolumeRef,
  type WipeCheck,
  type WipeRecord,
} from '../driver.ts';
import { hasCode, uploadWhenFree } from './errors.ts';
import { doneWithin, type LocatedVolume } from './volumes.ts';

const MiB = 1024 ** 2;
const WINDOW = 64 * MiB;
/** A thin volume's windows are asked for their data, and zeroed, this much at a time. */
export const PROBE = 8 * MiB;

/**
 * How a volume is zeroed: `stream` writes zeros through libvirt's upload stream over every
 * allocated byte (progress by byte, resumed after a crash): over all of a volume at least half
 * allocated; over each PROBE of a thinner one that a sparse download finds data in, so a thin
 * volume stays thin (zeroing all of it could fill an overcommitted pool) and its holes, which
 * hold nothing, are neither read nor written. `libvirt` is libvirt's own wipe
 * (virStorageVolWipe) where the pool has one, streamed zeros where it has none. libvirt's wipe
 * of a sparse file in a directory pool truncates it rather than overwriting, leaving the old
 * bytes in the file system's free space, and reports nothing until it ends: `stream` is the
 * default.
 */
export type WipeMethod = 'libvirt' | 'stream';

export interface WipeOptions extends ProgressOptions {
  /**
   * The test driver can neither wipe nor upload, and its volumes hold no bytes: there a volume
   * is deleted without zeroing (the progress and the record say so). Anywhere else that refuses.
   */
  simulated: boolean;
  /** `stream` by default. */
  method?: WipeMethod;
  /** Streamed zeros go no faster than this, so a wipe leaves the host's guests some disk; 0: no cap. */
  bytesPerSecond?: number;
  /** Told of the wipe once checked, before the volume is deleted (DeprovisionOptions.onWiped). */
  onWiped?: (record: WipeRecord) => Promise<void>;
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
export function resumeOffset(v: LocatedVolume, from: ProgressOptions['resumeFrom']): number {
  if (!from?.volume || from.step !== wipeStep(v.ref)) return 0;
  if (from.volume.pool !== v.ref.pool || from.volume.name !== v.ref.name) return 0;
  return from.total === v.capacity ? doneWithin(from) : 0;
}

/** Blocks of this size are read back between the first and the last MiB. */
export const CHECK_BLOCK = 64 * 1024;
/** How many: with the first and last MiB, a wipe's check reads 6 MiB, whatever the volume's size. */
export const CHECK_SAMPLES = 64;

/**
 * The ranges a wipe's check reads back: the first and the last MiB whole, and CHECK_SAMPLES
 * blocks between them, one at a `random` place within each of as many equal stripes (so no
 * fixed pattern of offsets is ever trusted). A volume of no more than a few MiB is read whole.
 */
export function checkRanges(
  capacity: number,
  random: () => number = Math.random,
): { offset: number; length: number }[] {
  if (capacity <= 2 * MiB + CHECK_SAMPLES * CHECK_BLOCK) {
    const whole: { offset: number; length: number }[] = [];
    for (let offset = 0; offset < capacity; offset += MiB) {
      whole.push({ offset, length: Math.min(MiB, capacity - offset) });
    }
    return whole;
  }
  const ranges = [{ offset: 0, length: MiB }];
  const stripe = Math.floor((capacity - 2 * MiB) / CHECK_SAMPLES);
  for (let i = 0; i < CHECK_SAMPLES; i++) {
    const slack = Math.max(0, stripe - CHECK_BLOCK);
    const jitter = Math.floor((random() * slack) / 4096) * 4096;
    ranges.push({ offset: MiB + i * stripe + jitter, length: CHECK_BLOCK });
  }
  ranges.push({ offset: capacity - MiB, length: MiB });
  return ranges;
}

/** Reads `v` back where checkRanges says; the first byte that is not zero, if any. */
async function readBack(v: LocatedVolume, step: string): Promise<WipeCheck> {
  const ranges = checkRanges(v.capacity);
  let bytesRead = 0;
  for (const { offset, length } of ranges) {
    let data: Buffer;
    try {
      data = await v.vol.download(offset, length);
    } catch (err) {
      if (!hasCode(err, C.VIR_ERR_NO_SUPPORT)) throw err;
      throw new DriverError(
        'unsupported',
        `${step}: the pool cannot read the volume back to check it, so it is kept`,
        { cause: err, code: err.code },
      );
    }
    if (data.length !== length) {
      // Shorter than its capacity says: what could not be read is not known to be zero.
      throw new DriverError(
        'unwiped',
        `${step}: read back ${data.length} of ${length} bytes at ${offset}; the volume is kept`,
      );
    }
    bytesRead += data.length;
    const at = data.findIndex((b) => b !== 0);
    if (at >= 0) return { blocks: ranges.length, bytesRead, nonZeroAt: offset + at };
  }
  return { blocks: ranges.length, bytesRead, nonZeroAt: null };
}

/**
 * Zeroes a volume, reads a sample of it back, reports the record, then deletes it. A check
 * that finds a byte not zero fails `unwiped` and keeps the volume. Resumable: an attempt
 * after a crash goes on from the progress the last one reported (streamed zeros from the last
 * offset; libvirt's own wipe reports none until it ends, so one cut short starts over).
 */
export async function wipeAndDelete(v: LocatedVolume, options: WipeOptions): Promise<void> {
  const step = wipeStep(v.ref);
  const started = performance.now();
  const from = resumeOffset(v, options.resumeFrom);
  options.onProgress?.({ step, done: from, total: v.capacity, volume: v.ref });
  // Zeroed to its end by an earlier attempt, cut short before the delete: only checked again.
  const { method, written } =
    from < v.capacity
      ? await zero(v, from, step, options)
      : { method: 'check-only' as const, written: 0 };
  options.signal?.throwIfAborted();
  const check = method === 'none' ? null : await readBack(v, step);
  const record: WipeRecord = {
    volume: v.ref,
    method,
    sizeBytes: v.capacity,
    // libvirt's wipe does not say: on a directory pool it may truncate rather than write.
    bytesWritten: written,
    resumedFrom: from,
    ms: Math.round(performance.now() - started),
    check,
  };
  await callBack(options.onWiped, record);
  if (check?.nonZeroAt != null) {
    throw new DriverError(
      'unwiped',
      `${step}: read back after the wipe, byte ${check.nonZeroAt} is not zero; the volume is kept`,
    );
  }
  options.signal?.throwIfAborted();
  try {
    await v.vol.delete(C.VIR_STORAGE_VOL_DELETE_NORMAL);
  } catch (err) {
    if (!hasCode(err, C.VIR_ERR_NO_STORAGE_VOL)) throw err;
  }
}

async function zero(
  v: LocatedVolume,
  from: number,
  step: string,
  options: WipeOptions,
): Promise<{ method: WipeRecord['method']; written: number | null }> {
  // A partial offset only ever comes from streamed zeros: those go on from there.
  if (from === 0 && options.method === 'libvirt') {
    try {
      await v.vol.wipe(C.VIR_STORAGE_VOL_WIPE_ALG_ZERO);
      options.onProgress?.({ step, done: v.capacity, total: v.capacity, volume: v.ref });
      return { method: 'libvirt', written: null };
    } catch (err) {
      if (!hasCode(err, C.VIR_ERR_NO_SUPPORT)) throw err;
    }
  }
  return zeroThroughStream(v, from, step, options);
}

/** About a second of writing at the cap, so progress (and heartbeats) stay frequent. */
function windowFor(bytesPerSecond: number | undefined): number {
  if (!bytesPerSecond) return WINDOW;
  return Math.min(WINDOW, Math.max(MiB, Math.floor(bytesPerSecond / MiB) * MiB));
}

/** Allocated bytes a thin volume may hold beyond its data: its file's own metadata blocks. */
const METADATA_SLACK = 64 * 1024;
/** A thin volume is asked where its data lies this much at a time: one stream each. */
const PLAN_REGION = 4 * 1024 ** 3;

/**
 * For a wipe going on from `from`: the offsets of the PROBEs from there on that hold data (a
 * sparse stream finds data there, even data all zero: it is allocated), or null where the rest
 * must be zeroed whole: it is not less than half allocated, the host cannot tell data from
 * holes, or the allocation exceeds the data found (beyond the file's metadata). That last is
 * how allocated blocks a file system reports as holes show: ext4 and XFS so report extents a
 * guest zeroed with fallocate (FALLOC_FL_ZERO_RANGE, write-zeroes), whose blocks still hold
 * their old bytes on disk. What lies before `from` an earlier attempt zeroed (all of it, or,
 * thin, what its own plan found, the volume then shown to hide nothing): it is counted as
 * allocated whole, and not read again.
 */
async function thinPlan(
  v: LocatedVolume,
  from: number,
  simulated: boolean,
  pace: (bytes: number) => Promise<void>,
): Promise<Set<number> | null> {
  if (simulated) return null;
  const start = Math.floor(from / PROBE) * PROBE;
  const { allocation } = await v.vol.getInfo();
  if (allocation - start >= (v.capacity - start) / 2) return null;
  const data = new Set<number>();
  let dataBytes = 0;
  for (let at = start; at < v.capacity; at += PLAN_REGION) {
    const length = Math.min(PLAN_REGION, v.capacity - at);
    try {
      const found = await v.vol.dataWindows(at, length, PROBE);
      for (const w of found.windows) data.add(w);
      dataBytes += found.dataBytes;
      await pace(found.dataBytes);
    } catch (err) {
      const refused = [C.VIR_ERR_NO_SUPPORT, C.VIR_ERR_INVALID_ARG];
      if (hasCode(err, ...refused, C.VIR_ERR_OPERATION_UNSUPPORTED)) return null;
      throw err;
    }
  }
  // Allocated blocks the probes did not see as data: zeroed too, with everything else.
  return allocation <= start + dataBytes + METADATA_SLACK ? data : null;
}

/**
 * What of [offset, offset + length) to zero: all of it, or where it meets the plan's PROBEs
 * (the window need not be PROBE-aligned: its size follows the rate cap, a resume its offset).
 */
function partsOf(plan: Set<number> | null, offset: number, length: number) {
  if (plan === null) return [{ offset, length }];
  const end = offset + length;
  const parts: { offset: number; length: number }[] = [];
  for (let p = Math.floor(offset / PROBE) * PROBE; p < end; p += PROBE) {
    if (!plan.has(p)) continue;
    const start = Math.max(p, offset);
    parts.push({ offset: start, length: Math.min(p + PROBE, end) - start });
  }
  return parts;
}

async function zeroThroughStream(
  v: LocatedVolume,
  from: number,
  step: string,
  options: WipeOptions,
): Promise<{ method: 'stream' | 'none'; written: number }> {
  const window = windowFor(options.bytesPerSecond);
  const started = performance.now();
  // The cap is on what the host's disk does: bytes written, and bytes a probe read.
  let moved = 0;
  const pace = async (bytes: number) => {
    moved += bytes;
    if (!options.bytesPerSecond) return;
    const ahead = (moved / options.bytesPerSecond) * 1000 - (performance.now() - started);
    if (ahead > 0) await sleep(ahead, undefined, options.signal ? { signal: options.signal } : {});
  };
  const plan = await thinPlan(v, from, options.simulated, pace);
  let written = 0;
  for (let offset = from; offset < v.capacity; offset += window) {
    options.signal?.throwIfAborted();
    const length = Math.min(window, v.capacity - offset);
    let zeroed = 0;
    try {
      for (const part of partsOf(plan, offset, length)) {
        await uploadWhenFree(() => v.vol.uploadZeros(part.offset, part.length), options.signal);
        zeroed += part.length;
      }
      written += zeroed;
    } catch (err) {
      if (!hasCode(err, C.VIR_ERR_NO_SUPPORT) || written + zeroed > 0) throw err;
      if (options.simulated) {
        options.onProgress?.({
          step: `${step}: skipped, a simulated volume holds no bytes`,
          done: v.capacity,
          total: v.capacity,
        });
        return { method: 'none', written: 0 };
      }
      throw new DriverError(
        'unsupported',
        `${step}: the pool can neither wipe nor take an upload, so the volume is left in place`,
        { cause: err, code: err.code },
      );
    }
    // Reported only once libvirt finished the stream: a resumed wipe trusts every byte before it.
    options.onProgress?.({ step, done: offset + length, total: v.capacity, volume: v.ref });
    if (offset + length < v.capacity) await pace(zeroed);
  }
  return { method: 'stream', written };
}
