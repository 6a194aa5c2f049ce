import { createHash, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

const MiB = 1024 ** 2;

/**
 * Writes random bytes at several offsets of a volume file (its first and last bytes, runs that
 * straddle copy chunks, small islands), leaving holes between: what a guest's disk holds.
 * Answers the offsets written, for a test to check a canary against.
 */
export async function writePattern(file: string): Promise<{ offset: number; length: number }[]> {
  const { size } = await stat(file);
  const spots = [
    { offset: 0, length: 4096 },
    { offset: 3 * MiB - 100, length: 200 },
    { offset: 8 * MiB - 17, length: 3 * MiB },
    { offset: 40 * MiB + 5, length: 1 },
    { offset: Math.floor(size / 2), length: 9 * MiB },
    { offset: size - 4096, length: 4096 },
  ].filter((s) => s.offset + s.length <= size);
  const handle = await open(file, 'r+');
  try {
    for (const s of spots) await handle.write(randomBytes(s.length), 0, s.length, s.offset);
  } finally {
    await handle.close();
  }
  return spots;
}

/** The SHA-256 of a file's first `length` bytes (all of it by default). */
export async function fileDigest(file: string, length?: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const end = length ?? (await handle.stat()).size;
    const buffer = Buffer.alloc(8 * MiB);
    for (let offset = 0; offset < end;) {
      const { bytesRead } = await handle.read(
        buffer,
        0,
        Math.min(buffer.length, end - offset),
        offset,
      );
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
