import { spawn } from 'node:child_process';
import { DriverError } from '../driver.ts';
import { admitGeatsAgent, HostUriError } from '../host-uri.ts';
import type { AgentOutput } from './protocol.ts';
import { watchRun, type RunOptions, type Transport } from './transport.ts';

export interface LocalTransportOptions {
  uri: string;
  agent: string;
  /** Agents (or directories of agents) the operator allows; nothing else is run. */
  allowed: readonly string[];
  /** The agent's environment; AGENT_ENV by default, never the worker's own. */
  env?: NodeJS.ProcessEnv;
}

/**
 * All an agent gets of an environment: the worker's holds its database URL and SSH key
 * passphrase, which are none of the agent's business.
 */
export const AGENT_ENV: Readonly<NodeJS.ProcessEnv> = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
};

/** Runs the agent on this machine (`geats:///path/to/agent`), as vagoth's geatslocal did. */
export class LocalTransport implements Transport {
  readonly uri: string;
  readonly #agent: string;
  readonly #allowed: readonly string[];
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: LocalTransportOptions) {
    this.uri = options.uri;
    this.#agent = options.agent;
    this.#allowed = options.allowed;
    this.#env = { ...(options.env ?? AGENT_ENV) };
  }

  /** The agent's real path, checked each run: a symlink may have been changed since. */
  async identity(): Promise<string> {
    try {
      return await admitGeatsAgent(this.#agent, this.#allowed);
    } catch (err) {
      if (!(err instanceof HostUriError)) throw err;
      throw new DriverError('rejected', `uri: ${err.message}`, { code: 'UriRefused' });
    }
  }

  async run(input: string, options: RunOptions): Promise<AgentOutput> {
    const agent = await this.identity();
    return this.#spawn(agent, input, options);
  }

  #spawn(agent: string, input: string, options: RunOptions): Promise<AgentOutput> {
    return new Promise((resolve, reject) => {
      // Its own process group, so a kill takes whatever the agent started with it.
      const child = spawn(agent, [], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: this.#env,
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
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        const message = `${this.uri}: cannot run the agent (${code})`;
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
