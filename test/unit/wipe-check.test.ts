import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHECK_BLOCK, CHECK_SAMPLES, checkRanges } from '../../drivers/libvirt/wipe.ts';

const MiB = 1024 ** 2;

describe("a wipe's read-back sample (checkRanges)", () => {
  it('reads the first and last MiB whole and 64 blocks between, in order, inside the volume', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 7 * MiB, max: 2 ** 50 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (capacity, r) => {
          const ranges = checkRanges(capacity, () => r);
          expect(ranges.length).toBe(CHECK_SAMPLES + 2);
          expect(ranges[0]).toEqual({ offset: 0, length: MiB });
          expect(ranges.at(-1)).toEqual({ offset: capacity - MiB, length: MiB });
          for (let i = 1; i < ranges.length; i++) {
            const before = ranges[i - 1]!;
            expect(ranges[i]!.offset).toBeGreaterThanOrEqual(before.offset + before.length);
          }
          for (const { length } of ranges.slice(1, -1)) expect(length).toBe(CHECK_BLOCK);
        },
      ),
    );
  });

  it('spreads the blocks over the whole volume: one in each 64th of it', () => {
    const capacity = 1024 * MiB;
    const stripe = (capacity - 2 * MiB) / CHECK_SAMPLES;
    const ranges = checkRanges(capacity, () => 0.999).slice(1, -1);
    ranges.forEach(({ offset }, i) => {
      expect(offset).toBeGreaterThanOrEqual(MiB + i * stripe);
      expect(offset + CHECK_BLOCK).toBeLessThanOrEqual(MiB + (i + 1) * stripe);
    });
  });

  it('is not the same sample twice: another draw, other offsets', () => {
    const a = checkRanges(1024 * MiB, () => 0.1).map((r) => r.offset);
    const b = checkRanges(1024 * MiB, () => 0.7).map((r) => r.offset);
    expect(a.slice(1, -1).every((o, i) => o !== b[i + 1])).toBe(true);
  });

  it('reads a small volume whole', () => {
    for (const capacity of [1, 4096, MiB, 2 * MiB + 1, 6 * MiB]) {
      const ranges = checkRanges(capacity);
      expect(ranges.reduce((n, r) => n + r.length, 0)).toBe(capacity);
      expect(ranges[0]!.offset).toBe(0);
    }
  });
});
