import { spawn } from 'node:child_process';
import { DriverError } from '../driver.ts';
import type { AgentOutput } from './protocol.ts';
import { watchRun, type RunOptions, type Transport } from './transport.ts';

export interface LocalTransportOptions {
  uri: string;
  agent: string;
  /** The agent's environment; the worker's own by default. */
  env?: NodeJS.ProcessEnv;
}

/** Runs the agent on this machine (`geats:///path/to/agent`), as vagoth's geatslocal did. */
export class LocalTransport implements Transport {
  readonly uri: string;
  readonly #agent: string;
  readonly #env: NodeJS.ProcessEnv | undefined;

  constructor(options: LocalTransportOptions) {
    this.uri = options.uri;
    this.#agent = options.agent;
    this.#env = options.env;
  }

  run(input: string, options: RunOptions): Promise<AgentOutput> {
    return new Promise((resolve, reject) => {
      // Its own process group, so a kill takes whatever the agent started with it.
      const child = spawn(this.#agent, [], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        ...(this.#env ? { env: this.#env } : {}),
      });
      let failure: DriverError | undefined;
      // The answer waits for the agent's exit, so a killed agent is gone when the call fails.
      const watch = watchRun(this.uri, options, (why) => {
        failure ??= why;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      });
      for (const stream of ['stdout', 'stderr'] as const) {
        child[stream].setEncoding('utf8');
        child[stream].on('data', watch.collect(stream));
      }
      // An agent that exits without reading its request breaks the pipe: its exit says why.
      child.stdin.on('error', () => {});
      child.on('error', (err) => {
        const message = `${this.uri}: cannot run the agent: ${err.message}`;
        failure ??= new DriverError('unreachable', message, { cause: err });
        // Never started: no close will follow.
        if (child.pid === undefined) {
          watch.stop();
          reject(failure);
        }
      });
      child.on('close', (exitCode, signal) => {
        watch.stop();
        if (failure) reject(failure);
        else resolve({ ...watch.out, exitCode, signal });
      });
      child.stdin.end(input);
    });
  }

  async close(): Promise<void> {}
}
