import { execFile } from 'node:child_process';
import { constants, accessSync } from 'node:fs';
import { chmod, chown, readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SYSTEM_URI = 'qemu:///system';
const SYSTEM_SOCKET = '/run/libvirt/libvirt-sock';
const VIRTLOGD_SOCKET = '/run/libvirt/virtlogd-sock';
const PID_FILES = { libvirtd: '/run/libvirtd.pid', virtlogd: '/run/virtlogd.pid' };
// Generous: a daemon's first start on a busy 2-core machine loads every driver it has.
const SOCKET_WAIT_MS = 60_000;

/** The absolute path of a program, looking in the sbin directories a non-login PATH may lack. */
export function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}

export function socketAnswers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const client = net.connect(socket);
    client.once('connect', () => {
      client.destroy();
      resolve(true);
    });
    client.once('error', () => resolve(false));
  });
}

export async function waitForSocket(socket: string, what: string, exited?: () => string | null) {
  const deadline = Date.now() + SOCKET_WAIT_MS;
  while (!(await socketAnswers(socket))) {
    const why = exited?.();
    if (why) throw new Error(`${what} exited before opening ${socket}: ${why}`);
    if (Date.now() > deadline) {
      throw new Error(`${what} did not open ${socket} within ${SOCKET_WAIT_MS / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A daemon that failed to start, with the end of what it logged, once `stop` cleaned up. */
export async function startFailed(err: unknown, logFile: string, stop: () => Promise<void>) {
  const output = await readFile(logFile, 'utf8').catch(() => '');
  await stop();
  return new Error(`${(err as Error).message}\n${output.slice(-2000)}`, { cause: err });
}

/**
 * Why the system daemon (qemu:///system) cannot run here, or null when it runs or can be started.
 * Only a missing program or a non-root user is a reason: a daemon that is installed but fails to
 * start is an error for ensureSystemLibvirtd to report.
 */
export async function systemLibvirtdUnavailable(): Promise<string | null> {
  if (await socketAnswers(SYSTEM_SOCKET)) return null;
  const missing = ['libvirtd', 'virtlogd', 'qemu-system-x86_64'].filter((p) => !findExecutable(p));
  if (missing.length > 0) {
    return `${missing.join(', ')} not installed (bash scripts/setup.sh installs them)`;
  }
  if (process.getuid?.() !== 0) return `libvirtd is not running and only root can start it`;
  return null;
}

export interface SystemLibvirtd {
  uri: typeof SYSTEM_URI;
  /** The daemons this call started (and stop() stops); empty when both were running. */
  started: string[];
  stop(): Promise<void>;
}

/**
 * Starts virtlogd and libvirtd as daemons, without systemd, unless their sockets already answer.
 * Idempotent: a second call finds them running and starts nothing. virtlogd comes first because
 * the qemu driver hands it every guest's console and log file.
 */
export async function ensureSystemLibvirtd(): Promise<SystemLibvirtd> {
  await openKvmToItsGroup();
  const started: { daemon: string; pid: number }[] = [];
  for (const [daemon, socket] of [
    ['virtlogd', VIRTLOGD_SOCKET],
    ['libvirtd', SYSTEM_SOCKET],
  ] as const) {
    if (await socketAnswers(socket)) continue;
    const program = findExecutable(daemon);
    if (!program) throw new Error(`${daemon} is not installed (bash scripts/setup.sh)`);
    // -d returns once the daemon is ready or has failed, so its exit status is meaningful.
    await run(program, ['-d']);
    await waitForSocket(socket, daemon);
    // Read now: stop() must end this process, not whatever holds the pid file by then.
    const pid = Number((await readFile(PID_FILES[daemon], 'utf8')).trim());
    started.push({ daemon, pid });
  }
  const virsh = findExecutable('virsh');
  if (!virsh) throw new Error('virsh is not installed (bash scripts/setup.sh)');
  // Proves the qemu driver itself loaded, not only the daemon's socket.
  await run(virsh, ['-c', SYSTEM_URI, 'version']);
  return {
    uri: SYSTEM_URI,
    started: started.map((s) => s.daemon),
    // libvirtd before virtlogd, the reverse of their start.
    stop: async () => {
      for (const { pid } of [...started].reverse()) await terminate(pid);
    },
  };
}

/**
 * Without udev, /dev/kvm keeps the kernel's root-only mode, and libvirt judges KVM usable when
 * it probes qemu as root but unusable for the qemu user: it then discards its capability cache
 * and probes qemu again (4 s here) before every domain start. udev's default rule gives the kvm
 * group the device; this does the same. Guests of type `qemu` run under emulation either way.
 */
async function openKvmToItsGroup(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const device = await stat('/dev/kvm').catch(() => null);
  const group = /^kvm:[^:]*:(\d+):/m.exec(await readFile('/etc/group', 'utf8').catch(() => ''));
  if (!device || !group) return;
  const gid = Number(group[1]);
  if (device.gid === gid && (device.mode & 0o060) === 0o060) return;
  await chown('/dev/kvm', device.uid, gid);
  await chmod('/dev/kvm', (device.mode & 0o7777) | 0o060);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function terminate(pid: number): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}
