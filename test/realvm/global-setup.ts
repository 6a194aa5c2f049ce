import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { ensureSystemLibvirtd, systemLibvirtdUnavailable } from '../support/libvirtd.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

/**
 * Once per run: the system libvirtd (started here without systemd when it is down, and stopped
 * again at the end) and the test guest (built once, then reused). A machine that cannot run
 * libvirtd or qemu at all skips the tier with the reason; any other failure fails it.
 */
export default async function setup(project: TestProject) {
  const skip = await systemLibvirtdUnavailable();
  if (skip) {
    project.provide('realvm', { skip, uri: '', kernel: '', initrd: '' });
    return;
  }
  const daemon = await ensureSystemLibvirtd();
  const guestDir = path.join(root, '.tools', 'guest');
  await run('bash', [path.join(root, 'scripts', 'guest', 'build.sh'), guestDir]);
  project.provide('realvm', {
    skip: null,
    uri: daemon.uri,
    kernel: path.join(guestDir, 'vmlinuz'),
    initrd: path.join(guestDir, 'initramfs.gz'),
  });
  return () => daemon.stop();
}
