import { DriverError } from '../driver.ts';
import type { AgentOutput } from './protocol.ts';

export interface RunOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /**
   * What the run acts on: a VM's name, or '' for the host. A transport that cannot confirm it
   * killed a run starts no other run on the same key while that one may still be running.
   */
  key?: string | undefined;
}

/** How the driver reaches a host's agent: one run per request. */
export interface Transport {
  /** For messages: the host's URI. */
  readonly uri: string;
  /** Runs the agent with `input` on its stdin; a run past `timeoutMs` is killed and fails with `timeout`. */
  run(input: string, options: RunOptions): Promise<AgentOutput>;
  /** Which agent this is: two transports with one identity reach one hypervisor. */
  identity(): Promise<string>;
  close(): Promise<void>;
}

/** More than any status answer of a real host; a runaway agent must not exhaust the worker. */
export const MAX_OUTPUT = 32 * 1024 * 1024;

export interface RunWatch {
  out: { stdout: string; stderr: string };
  /** A data listener for one of the agent's streams. */
  collect(stream: 'stdout' | 'stderr'): (chunk: string) => void;
  /** Once the run is over, however it ended. */
  stop(): void;
}

/**
 * Collects one run's output and calls `kill` with the reason when the run is past its time,
 * aborted, or writing more than MAX_OUTPUT: the transports differ only in how they kill.
 */
export function watchRun(
  uri: string,
  { timeoutMs, signal }: RunOptions,
  kill: (why: DriverError) => void,
): RunWatch {
  const out = { stdout: '', stderr: '' };
  const timer = setTimeout(() => {
    kill(
      new DriverError('timeout', `${uri}: the agent did not answer in ${timeoutMs} ms; killed it`),
    );
  }, timeoutMs);
  const onAbort = () => kill(new DriverError('timeout', `${uri}: aborted; killed the agent`));
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) queueMicrotask(onAbort);
  return {
    out,
    collect: (stream) => (chunk) => {
      out[stream] += chunk;
      if (out[stream].length > MAX_OUTPUT)
        kill(new DriverError('rejected', `${uri}: the agent wrote more than ${MAX_OUTPUT} bytes`));
    },
    stop() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
