import { execFile } from 'node:child_process';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { findExecutable } from '../support/libvirtd.ts';

const run = promisify(execFile);

/** virsh on the host under test, for what the tests set up and inspect beside the driver. */
export async function virsh(uri: string, ...args: string[]): Promise<string> {
  const program = findExecutable('virsh');
  if (!program) throw new Error('virsh is not installed (bash scripts/setup.sh)');
  return (await run(program, ['-c', uri, ...args])).stdout;
}

/**
 * A transient directory pool of the test's own: libvirt forgets it when it is destroyed (or
 * libvirtd restarts) and its directory stays for the test to inspect. 0711 lets qemu, which
 * runs as libvirt-qemu, reach the volumes libvirt hands it.
 */
export async function createDirPool(uri: string, name: string, dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o711 });
  await virsh(uri, 'pool-create-as', name, 'dir', '--target', dir);
}

export async function poolVolumes(uri: string, pool: string): Promise<string[]> {
  await virsh(uri, 'pool-refresh', pool);
  const out = await virsh(uri, 'vol-list', pool);
  // A header, a rule, then "name path" rows.
  return out
    .split('\n')
    .slice(2)
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Waits for a console line; the deadline only bounds a hung guest, it asserts no speed. */
export async function waitForConsole(
  file: string,
  pattern: RegExp,
  deadlineMs = 180_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const match = pattern.exec(text);
    if (match) return match;
    if (Date.now() > deadline) {
      throw new Error(
        `no ${String(pattern)} on the console ${file}; it holds:\n${text.slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Mark {
  offset: number;
  text: string;
}

/** Writes each mark at its offset, as a guest's data would be: from outside, in place. */
export async function writeMarks(file: string, marks: Mark[]): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    for (const mark of marks) await handle.write(Buffer.from(mark.text), 0, undefined, mark.offset);
  } finally {
    await handle.close();
  }
}

/** Allocates every block of a volume file, as a guest that filled its disk would have. */
export async function allocateAll(file: string): Promise<void> {
  const { size } = await stat(file);
  await run('fallocate', ['--length', String(size), file]);
  const { blocks } = await stat(file);
  if (blocks * 512 < size) throw new Error(`${file}: fallocate left it sparse`);
}

/** The bytes found where each mark was written, as text. */
export async function readMarks(file: string, marks: Mark[]): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const found: string[] = [];
    for (const mark of marks) {
      const buffer = Buffer.alloc(Buffer.byteLength(mark.text));
      await handle.read(buffer, 0, buffer.length, mark.offset);
      found.push(buffer.toString('latin1'));
    }
    return found;
  } finally {
    await handle.close();
  }
}

/** The offsets of non-zero 4 MiB chunks, at most a few: enough to name what was not wiped. */
export async function nonZeroChunks(file: string): Promise<{ size: number; dirty: number[] }> {
  const { size } = await stat(file);
  const chunk = 4 * 1024 * 1024;
  const zeros = Buffer.alloc(chunk);
  const buffer = Buffer.alloc(chunk);
  const dirty: number[] = [];
  const handle = await open(file, 'r');
  try {
    for (let offset = 0; offset < size && dirty.length < 8; offset += chunk) {
      const { bytesRead } = await handle.read(buffer, 0, chunk, offset);
      if (buffer.subarray(0, bytesRead).compare(zeros.subarray(0, bytesRead)) !== 0) {
        dirty.push(offset);
      }
    }
  } finally {
    await handle.close();
  }
  return { size, dirty };
}
