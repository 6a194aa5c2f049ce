import { describe, expect, it } from 'vitest';
import type { Progress, VolumeRef } from '../../drivers/driver.ts';
import { diskPlan, localVolumes } from '../../drivers/libvirt/disk-move.ts';
import {
  copiedBefore,
  copyStep,
  pairsDoneBefore,
  verifyStep,
  type VolumePair,
} from '../../drivers/libvirt/volume-copy.ts';

const GiB = 1024 ** 3;
const local: VolumeRef = { pool: 'vagoth', name: 'vagoth-x-disk0.img' };
const second: VolumeRef = { pool: 'vagoth', name: 'vagoth-x-disk1.img' };
const shared: VolumeRef = { pool: 'nfs', name: 'vagoth-x-disk2.img' };

describe('which disks a move copies', () => {
  it.each([
    { volumes: [], plan: 'none', copied: [] },
    { volumes: [shared], plan: 'none', copied: [] },
    { volumes: [local, second], plan: 'copy', copied: [local, second] },
    { volumes: [local, shared], plan: 'mixed', copied: [local] },
  ])('$plan for $volumes.length volume(s)', ({ volumes, plan, copied }) => {
    expect(diskPlan(volumes, ['nfs'])).toBe(plan);
    expect(localVolumes(volumes, ['nfs'])).toEqual(copied);
  });
});

/** A pair as copyDisks locates it; the volumes themselves are never touched by these rules. */
const pair = (ref: VolumeRef, capacity = GiB) => ({ ref, capacity }) as VolumePair;
const at = (step: string, done: number, volume: VolumeRef = local, total = GiB): Progress => ({
  step,
  done,
  total,
  volume,
});

describe('where a copy goes on from', () => {
  it.each<[string, Progress | undefined, number]>([
    ['no earlier attempt', undefined, 0],
    ['its copy offset', at(copyStep(local), 40 << 20), 40 << 20],
    ['the window edge below an offset between two', at(copyStep(local), (40 << 20) + 5), 40 << 20],
    ['all of it once it was verifying', at(verifyStep(local), 0), GiB],
    ['0 for another volume', at(copyStep(second), 40 << 20, second), 0],
    ['0 for a volume of another size', at(copyStep(local), 40 << 20, local, 2 * GiB), 0],
    ['0 for another step', at('migrate cold: define on target', 1), 0],
    ['0 past the end', at(copyStep(local), GiB + 1), 0],
    ['0 for a fraction', at(copyStep(local), 0.5), 0],
    ['0 for a negative offset', at(copyStep(local), -8), 0],
  ])('%s', (_, progress, offset) => {
    expect(copiedBefore(pair(local), progress)).toBe(offset);
  });

  it('skips the volumes before the one the last progress names, and only those', () => {
    const pairs = [pair(local), pair(second)];
    expect(pairsDoneBefore(pairs, undefined)).toBe(0);
    expect(pairsDoneBefore(pairs, at(copyStep(local), 8 << 20))).toBe(0);
    expect(pairsDoneBefore(pairs, at(copyStep(second), 0, second))).toBe(1);
    expect(pairsDoneBefore(pairs, at(verifyStep(second), 0, second))).toBe(1);
    expect(pairsDoneBefore(pairs, at('provision', 1, second))).toBe(0);
  });
});
