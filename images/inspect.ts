import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { ImageFormat } from '../registry/images.ts';

const run = promisify(execFile);

/**
 * An image vagoth will not keep: its digest is not the one asked for, its format is not one it
 * takes, it names a file outside itself. Importing it again would find the same: permanent.
 */
export class ImageRejected extends Error {
  override name = 'ImageRejected';
}

/** qemu-img reads only an image's header and tables; a minute is plenty for a sane one. */
const INSPECT_TIMEOUT_MS = 60_000;
/** Limits on qemu-img reading untrusted bytes: address space and CPU seconds. */
const QEMU_IMG_LIMITS = ['--as=2147483648', '--cpu=60'];

/**
 * Formats told by their first bytes. qcow2 is taken; the others are named and refused; any
 * other start is a raw disk (whose first bytes are the guest's, an MBR say). Deciding here,
 * and always passing `-f`, keeps qemu-img from probing untrusted bytes: a raw image that
 * looked like a VMDK descriptor would have it open files the descriptor names.
 */
const MAGICS: { magic: Buffer; format: string }[] = [
  { magic: Buffer.from('QFI\xfb', 'latin1'), format: 'qcow2' },
  { magic: Buffer.from('KDMV'), format: 'vmdk' },
  { magic: Buffer.from('# Disk DescriptorFile'), format: 'vmdk' },
  { magic: Buffer.from('conectix'), format: 'vpc' },
  { magic: Buffer.from('vhdxfile'), format: 'vhdx' },
  { magic: Buffer.from('<<< '), format: 'vdi' },
  { magic: Buffer.from('QED\0', 'latin1'), format: 'qed' },
  { magic: Buffer.from('LUKS\xba\xbe', 'latin1'), format: 'luks' },
  { magic: Buffer.from('WithoutFreeSpace'), format: 'parallels' },
  { magic: Buffer.from('WithouFreSpacExt'), format: 'parallels' },
];

async function formatByMagic(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const start = head.subarray(0, bytesRead);
    return MAGICS.find((m) => start.subarray(0, m.magic.length).equals(m.magic))?.format ?? 'raw';
  } finally {
    await handle.close();
  }
}

interface QemuImgInfo {
  format?: unknown;
  'virtual-size'?: unknown;
  'backing-filename'?: unknown;
  'full-backing-filename'?: unknown;
  'format-specific'?: { type?: unknown; data?: { 'data-file'?: unknown } };
}

/**
 * The image's format (by its first bytes, and the one asked for if any: they must agree) and
 * virtual size, read by `qemu-img info -f <format>` under limits. A qcow2 image naming a
 * backing or data file is refused. What qemu-img printed goes nowhere near the caller; a
 * qemu-img that was killed or timed out says nothing of the image (retried).
 */
export async function inspect(
  file: string,
  asked: ImageFormat | null,
): Promise<{ format: ImageFormat; virtualSize: number }> {
  const found = await formatByMagic(file);
  if (found !== 'raw' && found !== 'qcow2') {
    throw new ImageRejected(`its format is ${found}: only qcow2 and raw are taken`);
  }
  if (asked !== null && asked !== found) {
    throw new ImageRejected(`it is a ${found} image, not the ${asked} asked for`);
  }
  const format: ImageFormat = found;
  let info: QemuImgInfo;
  try {
    const { stdout } = await run(
      'prlimit',
      [...QEMU_IMG_LIMITS, 'qemu-img', 'info', '--output=json', '-f', format, file],
      { timeout: INSPECT_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
    );
    info = JSON.parse(stdout) as QemuImgInfo;
  } catch (err) {
    const e = err as { code?: unknown; killed?: boolean; signal?: unknown };
    if (e.code === 'ENOENT' || e.code === 127) {
      throw new Error('qemu-img is not installed on this worker (bash scripts/setup.sh)', {
        cause: err,
      });
    }
    if (e.killed || e.signal || typeof e.code !== 'number') {
      throw new Error('qemu-img did not finish reading the image', { cause: err });
    }
    // What qemu-img printed stays in the cause, for the worker's log only.
    throw new ImageRejected(`qemu-img cannot read it as a ${format} image`, { cause: err });
  }
  if (info.format !== format) {
    throw new ImageRejected(`qemu-img cannot read it as a ${format} image`);
  }
  if (info['backing-filename'] !== undefined || info['full-backing-filename'] !== undefined) {
    throw new ImageRejected('it names a backing file: only a self-contained image is taken');
  }
  if (info['format-specific']?.data?.['data-file'] !== undefined) {
    throw new ImageRejected('it names an external data file: only a self-contained image is taken');
  }
  const size = info['virtual-size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw new ImageRejected('qemu-img found no virtual size in it');
  }
  return { format, virtualSize: size };
}
