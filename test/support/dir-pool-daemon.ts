import { chown, mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../config.ts';
import { createDriverFactory, type DriverFactory } from '../../drivers/index.ts';
import type { DriversOptions } from '../../drivers/index.ts';
import { virsh } from '../realvm/host.ts';
import { TEST_HOST_URIS } from './host-uris.ts';
import { startPrivateLibvirtd, type PrivateLibvirtd } from './private-libvirtd.ts';

const MiB = 1024 ** 2;

export interface DirPoolDaemon {
  daemon: PrivateLibvirtd;
  /** The daemon's session qemu driver: real files, no guest needed. */
  uri: string;
  pool: string;
  /** The pool's directory, where its volumes' files are. */
  poolDir: string;
  /** A directory on the pool's file system, for hard links to volume files. */
  linkDir: string;
  stop(): Promise<void>;
}

/**
 * The drivers a test's worker reaches dir-pool daemons with: libvirt hosts whose VMs go in
 * `pool`, under software emulation, with `libvirt` options of the test's own besides.
 */
export function dirPoolDrivers(
  pool: string,
  libvirt: Partial<DriversOptions['libvirt']> = {},
): DriverFactory {
  const drivers = loadConfig().drivers;
  return createDriverFactory({
    ...drivers,
    hostUris: TEST_HOST_URIS,
    libvirt: { ...drivers.libvirt, pools: [pool], domainType: 'qemu', ...libvirt },
  });
}

/**
 * A libvirtd of its own whose session qemu driver keeps a real directory pool: volumes with
 * real bytes to wipe, without the system daemon or a guest (none could boot without KVM).
 */
export async function startDirPoolDaemon(pool: string): Promise<DirPoolDaemon> {
  const daemon = await startPrivateLibvirtd();
  try {
    const uri = daemon.uri('qemu');
    const poolDir = path.join(daemon.dir, 'pool');
    const linkDir = path.join(daemon.dir, 'links');
    await mkdir(poolDir, { mode: 0o711 });
    // The daemon runs unprivileged (as `nobody` under root) and creates the volume files.
    const owner = await stat(daemon.dir);
    await chown(poolDir, owner.uid, owner.gid);
    await mkdir(linkDir);
    await virsh(uri, 'pool-create-as', pool, 'dir', '--target', poolDir);
    return { daemon, uri, pool, poolDir, linkDir, stop: () => daemon.stop() };
  } catch (err) {
    await daemon.stop();
    throw err;
  }
}

/**
 * Byte ranges of a file (of its first `upTo` bytes, if given) that are not zero, at most eight:
 * what a wipe left behind.
 */
export async function nonZeroRanges(
  file: string,
  upTo = Infinity,
): Promise<{ start: number; end: number }[]> {
  const chunk = 4 * MiB;
  const buffer = Buffer.alloc(chunk);
  const zeros = Buffer.alloc(chunk);
  const ranges: { start: number; end: number }[] = [];
  const handle = await open(file, 'r');
  try {
    const size = Math.min(upTo, (await handle.stat()).size);
    for (let offset = 0; offset < size && ranges.length < 8; offset += chunk) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(chunk, size - offset), offset);
      if (buffer.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) continue;
      for (let i = 0; i < bytesRead; i++) {
        if (buffer[i] === 0) continue;
        let j = i;
        while (j < bytesRead && buffer[j] !== 0) j++;
        const last = ranges[ranges.length - 1];
        if (last && last.end === offset + i) last.end = offset + j;
        else ranges.push({ start: offset + i, end: offset + j });
        i = j;
      }
    }
  } finally {
    await handle.close();
  }
  return ranges;
}
