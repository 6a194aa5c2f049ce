import { spawn } from 'node:child_process';
import { chmod, mkdtemp, open, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, startFailed, waitForSocket } from './libvirtd.ts';

export interface NamespacedLibvirtd {
  /** Its socket, configuration, pid files and log. */
  dir: string;
  /** The system qemu driver of this daemon: it boots real guests and makes libvirt networks. */
  uri: string;
  logFile: string;
  /** Ends the daemon and everything in its mount namespace (its virtlogd, its guests' qemu). */
  stop(): Promise<void>;
}

/**
 * Where a system libvirtd keeps its state; each daemon gets a tmpfs of its own over each, so
 * two daemons on one machine share no domain, network, lock or log. /etc/libvirt/qemu holds
 * persistent definitions (and the host's autostarted networks, which stay hidden).
 */
const PRIVATE_DIRS = [
  '/run/libvirt',
  '/var/lib/libvirt',
  '/var/cache/libvirt',
  '/var/log/libvirt',
  '/etc/libvirt/qemu',
];

// Runs inside `unshare -m --propagation private`: the mounts are this namespace's alone.
const START = `set -e
dir=$1
for m in ${PRIVATE_DIRS.join(' ')}; do mkdir -p "$m"; mount -t tmpfs -o mode=0755 tmpfs "$m"; done
mkdir -p /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/log/libvirt/qemu
chown libvirt-qemu:kvm /var/lib/libvirt/qemu /var/cache/libvirt/qemu 2>/dev/null || true
"$2" -d -p "$dir/virtlogd.pid"
exec "$3" -p "$dir/libvirtd.pid" -f "$dir/libvirtd.conf"
`;

/**
 * A system libvirtd of its own, as a second (third, ...) real host on this machine: run as root
 * in a mount namespace of its own with tmpfs over the system daemon's state directories, its own
 * virtlogd, and its sockets in a directory outside them, reached as
 * `qemu+unix:///system?socket=<dir>/libvirt-sock`. Only root can start one.
 */
export async function startNamespacedLibvirtd(): Promise<NamespacedLibvirtd> {
  if (process.getuid?.() !== 0) throw new Error('a namespaced libvirtd needs root');
  const programs = ['unshare', 'virtlogd', 'libvirtd'].map((p) => findExecutable(p));
  const [unshare, virtlogd, libvirtd] = programs;
  if (!unshare || !virtlogd || !libvirtd) {
    throw new Error('unshare, virtlogd and libvirtd are needed (bash scripts/setup.sh)');
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vagoth-nslibvirtd-'));
  // qemu (libvirt-qemu) reaches what tests put under it, not what it lists.
  await chmod(dir, 0o711);
  await writeFile(
    path.join(dir, 'libvirtd.conf'),
    `unix_sock_dir = "${dir}"\nunix_sock_rw_perms = "0700"\n`,
  );
  const logFile = path.join(dir, 'libvirtd.log');
  const log = await open(logFile, 'a');
  const child = spawn(
    unshare,
    ['-m', '--propagation', 'private', 'sh', '-c', START, 'start', dir, virtlogd, libvirtd],
    { stdio: ['ignore', log.fd, log.fd] },
  );
  await log.close();
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exit ${code ?? signal}; see ${logFile}`));
  child.once('error', (err) => (exited = err.message));
  // `unshare` execs sh, which execs libvirtd: the child is the daemon, inside the namespace
  // once its socket answers (read before that, it may still be this process's namespace).
  let namespace: string | null = null;
  const stop = async () => {
    if (namespace) await killNamespace(namespace, child.pid);
    else child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForSocket(path.join(dir, 'libvirt-sock'), 'libvirtd', () => exited);
    const own = await readlink('/proc/self/ns/mnt');
    const its = await readlink(`/proc/${child.pid}/ns/mnt`);
    if (its === own) throw new Error("libvirtd runs in the test runner's own mount namespace");
    namespace = its;
  } catch (err) {
    throw await startFailed(err, logFile, stop);
  }
  return {
    dir,
    uri: `qemu+unix:///system?socket=${path.join(dir, 'libvirt-sock')}`,
    logFile,
    stop,
  };
}

/** The processes in a mount namespace, by its /proc link (`mnt:[4026532...]`). */
async function membersOf(namespace: string): Promise<number[]> {
  // Never this process's own namespace: that would be every process on the machine.
  if (namespace === (await readlink('/proc/self/ns/mnt'))) return [];
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p)).map(Number);
  const found: number[] = [];
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const link = await readlink(`/proc/${pid}/ns/mnt`).catch(() => null);
    if (link === namespace) found.push(pid);
  }
  return found;
}

/**
 * libvirtd first (SIGTERM, so it lets go of its guests cleanly), then whatever is left in its
 * namespace: a guest's qemu and virtlogd outlive the daemon otherwise. The namespace is the
 * daemon's own (unshare made it), so nothing else is touched.
 */
async function killNamespace(namespace: string, daemon: number | undefined): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  if (daemon !== undefined) signal(daemon, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (daemon !== undefined && Date.now() < deadline) {
    if (!(await membersOf(namespace)).includes(daemon)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (let round = 0; round < 50; round++) {
    const left = await membersOf(namespace);
    if (left.length === 0) return;
    for (const pid of left) signal(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
}
