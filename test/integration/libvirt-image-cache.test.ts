import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../../drivers/driver.ts';
import { IMAGE_CHECK_STEP, IMAGE_COPY_STEP } from '../../drivers/libvirt/image-cache.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import type { VmImage } from '../../registry/types.ts';
import { startDirPoolDaemon, type DirPoolDaemon } from '../support/dir-pool-daemon.ts';
import { findExecutable } from '../support/libvirtd.ts';

const missing = ['libvirtd', 'virsh'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;
const MiB = 1024 ** 2;
const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A host's copy of an image, on a libvirt host keeping real bytes: written from the worker's
 * file, read back and checked by digest; resumed from a heartbeat; made again when it does
 * not read back as the image; left as it is when it already does.
 */
describe.skipIf(skip)(skip ? `image copies (skipped: ${skip})` : 'image copies', () => {
  const pool = `vagoth-ic-${randomUUID().slice(0, 8)}`;
  let daemon: DirPoolDaemon;
  let driver: LibvirtDriver;
  let file: string;
  let bytes: Buffer;
  let image: VmImage;

  beforeAll(async () => {
    daemon = await startDirPoolDaemon(pool);
    driver = new LibvirtDriver({ uri: daemon.uri, pools: [pool] });
    // 20 MiB and a bit: more than two of the copy's 8 MiB chunks, the last one short.
    bytes = randomBytes(20 * MiB + 12_345);
    file = path.join(daemon.linkDir, 'image.raw');
    await writeFile(file, bytes);
    image = {
      id: randomUUID(),
      name: 'ic',
      format: 'raw',
      sha256: digest(bytes),
      sizeBytes: bytes.length,
      virtualSize: bytes.length,
    };
  });
  afterAll(async () => {
    await driver?.close();
    await daemon?.stop();
  });

  const copyFile = () => path.join(daemon.poolDir, driver.imageVolume(image).name);
  const copy = async (options: { resumeFrom?: Progress } = {}) => {
    const seen: Progress[] = [];
    await driver.copyImage(image, file, { ...options, onProgress: (p) => seen.push(p) });
    return seen;
  };

  it('copies the image whole and reads it back against its digest', async () => {
    const seen = await copy();
    expect(digest(await readFile(copyFile()))).toBe(image.sha256);
    expect(seen.filter((p) => p.step === IMAGE_COPY_STEP).at(-1)).toMatchObject({
      done: bytes.length,
      total: bytes.length,
    });
    expect(seen.at(-1)).toMatchObject({ step: IMAGE_CHECK_STEP, done: bytes.length });
  });

  it('writes nothing when the copy there already reads back as the image', async () => {
    const before = (await stat(copyFile())).mtimeMs;
    const seen = await copy();
    expect(seen.some((p) => p.step === IMAGE_COPY_STEP)).toBe(false);
    expect((await stat(copyFile())).mtimeMs).toBe(before);
  });

  it('goes on from the offset an earlier attempt heartbeated, and starts over when what lies before it is wrong', async () => {
    const volume = driver.imageVolume(image);
    const damage = async (from: number) => {
      const handle = await open(copyFile(), 'r+');
      await handle.write(Buffer.alloc(bytes.length - from), 0, bytes.length - from, from);
      await handle.close();
    };
    // An attempt cut short after 8 MiB: only the rest is written again.
    await damage(8 * MiB);
    const resumed = await copy({
      resumeFrom: { step: IMAGE_COPY_STEP, done: 8 * MiB + 5, total: bytes.length, volume },
    });
    expect(resumed.find((p) => p.step === IMAGE_COPY_STEP)?.done).toBe(8 * MiB);
    expect(digest(await readFile(copyFile()))).toBe(image.sha256);

    // A heartbeat that claims more than the volume holds: the read-back catches it, and the
    // copy is made again from byte 0.
    await damage(4 * MiB);
    const redone = await copy({
      resumeFrom: { step: IMAGE_COPY_STEP, done: 16 * MiB, total: bytes.length, volume },
    });
    const starts = redone.filter((p) => p.step === IMAGE_COPY_STEP).map((p) => p.done);
    expect(starts[0]).toBe(16 * MiB);
    expect(starts).toContain(0);
    expect(digest(await readFile(copyFile()))).toBe(image.sha256);
  });

  it('refuses a store file that is not the image’s size, and removes the copy once', async () => {
    const other = { ...image, id: randomUUID(), sizeBytes: bytes.length + 1 };
    await expect(driver.copyImage(other, file)).rejects.toMatchObject({ kind: 'rejected' });
    await driver.removeImage(other);
    await driver.removeImage(image);
    await driver.removeImage(image);
    await expect(stat(copyFile())).rejects.toThrow();
  });
});
