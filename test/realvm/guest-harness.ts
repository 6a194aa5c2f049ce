import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { loadConfig } from '../../config.ts';
import { createDriverFactory, type HostUriPolicy } from '../../drivers/index.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { TEST_HOST_URIS } from '../support/host-uris.ts';

const run = promisify(execFile);

export interface GuestDir {
  dir: string;
  /** The directory images may be imported from: `vmlinuz`, `initrd` and a blank `disk.qcow2`. */
  allowed: string;
  /** Where each guest's serial console is logged, as `<vm id>.log`. */
  consoleDir: string;
}

/**
 * A temporary directory for tests that boot guests from images: the guest's kernel and initrd
 * and a blank 64 MiB qcow2 disk to import, and a console directory qemu (another user) writes.
 */
export async function prepareGuestDir(prefix: string): Promise<GuestDir> {
  const realvm = inject('realvm');
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  // qemu runs as libvirt-qemu: it must reach the pools and the console logs.
  await chmod(dir, 0o711);
  const consoleDir = path.join(dir, 'console');
  await mkdir(consoleDir, { mode: 0o777 });
  await chmod(consoleDir, 0o777);
  const allowed = path.join(dir, 'allowed');
  await mkdir(allowed);
  await copyFile(realvm.kernel, path.join(allowed, 'vmlinuz'));
  await copyFile(realvm.initrd, path.join(allowed, 'initrd'));
  await run('qemu-img', ['create', '-f', 'qcow2', path.join(allowed, 'disk.qcow2'), '64M']);
  return { dir, allowed, consoleDir };
}

/**
 * A harness whose libvirt driver boots real guests (qemu under emulation) on `pool`, logs their
 * consoles, reaches the daemons whose sockets lie in `socketDirs`, and imports images from the
 * guest directory's `allowed` into a store under it.
 */
export async function startGuestHarness(
  guest: GuestDir,
  options: { pool: string; socketDirs: string[]; http?: boolean },
): Promise<Harness> {
  const hostUris: HostUriPolicy = {
    ...TEST_HOST_URIS,
    libvirtSocketDirs: [...TEST_HOST_URIS.libvirtSocketDirs, ...options.socketDirs],
  };
  const drivers = loadConfig().drivers;
  return startHarness({
    http: options.http ?? false,
    hostUris,
    driverFactory: createDriverFactory({
      ...drivers,
      hostUris,
      libvirt: {
        ...drivers.libvirt,
        pools: [options.pool],
        domainType: 'qemu',
        consoleLogDir: guest.consoleDir,
      },
    }),
    images: {
      store: path.join(guest.dir, 'store'),
      sources: { dirs: [guest.allowed], urls: [] },
      maxBytes: 1024 ** 3,
    },
  });
}
