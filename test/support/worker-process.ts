import { tmpdir } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./worker-main.ts', import.meta.url));

export interface WorkerProcessOptions {
  temporalAddress: string;
  databaseUrl: string;
  taskQueue: string;
  /** A file holding a prebuilt workflow bundle; bundled from source at each start otherwise. */
  bundlePath?: string;
  /** More environment (VAGOTH_LIBVIRT_POOLS, ...). */
  env?: Record<string, string>;
}

/**
 * The vagoth worker in a process of its own, so a test can kill it as a machine failure would
 * (SIGKILL: no drain, no cleanup) and start another in its place.
 */
export class WorkerProcess {
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #output = '';
  /** How many times a worker was started. */
  starts = 0;

  constructor(readonly options: WorkerProcessOptions) {}

  get running(): boolean {
    return this.#child !== null;
  }

  /** Resolves once the worker polls its task queue. */
  async start(): Promise<void> {
    if (this.#child) throw new Error('worker process already running');
    const { options } = this;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, ...(options.bundlePath ? [options.bundlePath] : [])],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          TEMPORAL_ADDRESS: options.temporalAddress,
          DATABASE_URL: options.databaseUrl,
          VAGOTH_TASK_QUEUE: options.taskQueue,
          VAGOTH_LOG_LEVEL: 'ERROR',
          // The hosts tests write live under the temp directory (support/host-uris.ts).
          VAGOTH_ALLOW_SIMULATED_HOSTS: 'true',
          VAGOTH_SIMULATED_HOST_DIRS: tmpdir(),
          VAGOTH_GEATS_AGENTS: tmpdir(),
          VAGOTH_LIBVIRT_SOCKET_DIRS: tmpdir(),
          ...options.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.#child = child;
    this.starts++;
    let exitedWith = '';
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        exitedWith = String(code ?? signal);
        if (this.#child === child) this.#child = null;
        resolve();
      }),
    );
    const keep = (chunk: Buffer) => {
      // Enough of the tail to explain a failed start, never the whole log of a long test.
      this.#output = (this.#output + chunk.toString()).slice(-8000);
    };
    child.stderr!.on('data', keep);
    const ready = new Promise<void>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        keep(chunk);
        if (this.#output.includes('vagoth-worker-ready')) resolve();
      });
    });
    await Promise.race([ready, this.#exited]);
    if (exitedWith)
      throw new Error(`worker exited (${exitedWith}) before it was ready:\n${this.#output}`);
    // Later starts look for their own ready line.
    this.#output = '';
  }

  /** Kills the worker with no chance to finish anything, and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill(signal);
    await this.#exited;
    this.#child = null;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** A clean stop (SIGTERM: the worker drains), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.kill('SIGTERM');
    await this.#exited;
    clearTimeout(timer);
    this.#child = null;
  }

  /** The tail of its output, for a failure message. */
  get output(): string {
    return this.#output;
  }
}
