import { execFile, spawn } from 'node:child_process';
import { chown, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findExecutable, startFailed, waitForSocket } from './libvirtd.ts';

const run = promisify(execFile);

export interface PrivateLibvirtdOptions {
  /** Its sockets, configuration and state; a new temporary directory by default, removed by stop(). */
  dir?: string;
  /** Who it runs as when the caller is root; `nobody` by default. */
  user?: string;
}

export interface PrivateLibvirtd {
  dir: string;
  socket: string;
  /**
   * A URI that reaches this daemon. `test` is libvirt's test driver: one simulated host per
   * daemon, whose state lives while at least one connection to it is open. `qemu` is the
   * daemon's own session qemu driver.
   */
  uri(driver?: 'test' | 'qemu'): string;
  /** Its output, for a failure message. */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A libvirtd of its own, on its own unix socket, e.g. one per simulated host. A root daemon
 * always takes the system daemon's fixed state paths (/run/libvirt/...), so a second one cannot
 * start beside it; an unprivileged daemon keeps everything under its XDG directories instead, so
 * as root it runs as `user`. The caller stops it (and only it) with stop().
 */
export async function startPrivateLibvirtd(
  options: PrivateLibvirtdOptions = {},
): Promise<PrivateLibvirtd> {
  const libvirtd = findExecutable('libvirtd');
  if (!libvirtd) throw new Error('libvirtd is not installed (bash scripts/setup.sh)');
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'vagoth-libvirtd-')));
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_DATA_HOME: path.join(dir, 'data'),
  };
  let command = [libvirtd];
  if (process.getuid?.() === 0) {
    const user = options.user ?? 'nobody';
    const uid = Number((await run('id', ['-u', user])).stdout.trim());
    const gid = Number((await run('id', ['-g', user])).stdout.trim());
    await chown(dir, uid, gid);
    const setpriv = findExecutable('setpriv');
    if (!setpriv) throw new Error('setpriv (util-linux) is needed to run libvirtd unprivileged');
    command = [setpriv, `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', libvirtd];
  }

  const logFile = path.join(dir, 'libvirtd.log');
  const log = await open(logFile, 'a');
  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, args, { env, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  let exited: string | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exit ${code ?? signal}; see ${logFile}`;
      resolve();
    });
  });
  child.once('error', (err) => (exited = err.message));

  const socket = path.join(env.XDG_RUNTIME_DIR, 'libvirt', 'libvirt-sock');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    }
    // Guests the daemon's qemu driver still ran (a test that failed before it removed them)
    // outlive it: their qemu is found by the state directory it was given, and killed.
    await run('pkill', ['-KILL', '-f', '--', `${dir}/config/libvirt/qemu/`]).catch(() => undefined);
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForSocket(socket, 'libvirtd', () => exited);
  } catch (err) {
    throw await startFailed(err, logFile, stop);
  }
  return {
    dir,
    socket,
    logFile,
    uri: (driver = 'test') =>
      `${driver}+unix:///${driver === 'test' ? 'default' : 'session'}?socket=${socket}`,
    stop,
  };
}
