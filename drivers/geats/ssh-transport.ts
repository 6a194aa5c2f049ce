import ssh2, { type ClientChannel, type ConnectConfig } from 'ssh2';
import { DriverError } from '../driver.ts';
import type { KnownHosts, HostKeyVerdict } from './known-hosts.ts';
import type { AgentOutput } from './protocol.ts';
import { watchRun, type RunOptions, type Transport } from './transport.ts';

// ssh2 is CommonJS: its default export is what Node's ESM loader reliably provides.
const { Client } = ssh2;
type Client = InstanceType<typeof Client>;

export interface SshCredentials {
  privateKey: Buffer | string;
  passphrase?: string | undefined;
  knownHosts: KnownHosts;
}

export interface SshTransportOptions {
  uri: string;
  host: string;
  port: number;
  user: string;
  agent: string;
  /** Read at each connect, so a rotated key or an edited known_hosts takes effect. */
  credentials: () => Promise<SshCredentials>;
  connectTimeoutMs: number;
  /** Concurrent agent runs on the one connection (OpenSSH's MaxSessions is 10). */
  maxChannels?: number;
  /** How long a killed agent's host has to report it ended; 5 s by default. */
  killGraceMs?: number;
}

// A known_hosts type names the key; RSA keys sign with any of these algorithms.
const ALGORITHMS: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Asks the host to SIGKILL the channel's command. ssh2's `signal()` sends nothing once the
 * channel's write side is ended, and it always is here (the request is followed by EOF, which
 * the agent waits for), so the request goes through its protocol object, as `signal()` itself
 * sends it (ssh2 1.x).
 */
function sendKill(channel: ClientChannel): void {
  const c = channel as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal(id: number, name: string): void } };
  };
  try {
    const state = c.outgoing?.state;
    if (c.outgoing && (state === 'open' || state === 'eof'))
      c._client?._protocol?.signal(c.outgoing.id, 'KILL');
  } catch {
    // the connection is closing already: its close will settle the run
  }
}

/** Runs the agent over one SSH connection per host, kept open and reopened when it drops. */
export class SshTransport implements Transport {
  readonly uri: string;
  readonly #o: SshTransportOptions;
  #connection: Promise<Client> | undefined;
  /** The open connection #connection resolved to, so a drop can forget it at once. */
  #client: Client | undefined;
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  /**
   * Keys (a VM's name, '' for the host) whose last agent run was to be killed but the host never
   * reported it ended (an SSH server that ignores `signal` requests, as OpenSSH before 7.9 does,
   * leaves the command running): no other run starts on them until it does.
   */
  readonly #unconfirmed = new Set<string>();

  constructor(options: SshTransportOptions) {
    this.uri = options.uri;
    this.#o = options;
  }

  /** The agent on its host: `geats+ssh://user@host:port/agent`, host in lower case. */
  identity(): Promise<string> {
    const { user, host, port, agent } = this.#o;
    return Promise.resolve(`geats+ssh://${user}@${host.toLowerCase()}:${port}${agent}`);
  }

  async run(input: string, options: RunOptions): Promise<AgentOutput> {
    const key = options.key ?? '';
    this.#refuseWhileUnconfirmed(key);
    await this.#acquire();
    let channel: ClientChannel;
    try {
      this.#refuseWhileUnconfirmed(key);
      const reused = this.#client !== undefined;
      channel = await this.#exec().catch((err: unknown) => {
        // A reused connection may have died unnoticed; nothing was sent, so try a fresh one.
        if (!reused || (err instanceof DriverError && err.kind !== 'unreachable')) throw err;
        return this.#exec();
      });
    } catch (err) {
      this.#release();
      throw err;
    }
    // The channel's slot is given back when the channel closes, not when the call fails.
    channel.once('close', () => this.#release());
    return this.#talk(channel, input, options, key);
  }

  /** Retryable: once the host reports the earlier agent ended, a retry goes through. */
  #refuseWhileUnconfirmed(key: string): void {
    if (!this.#unconfirmed.has(key)) return;
    const what = key === '' ? 'the host' : key;
    throw new DriverError(
      'timeout',
      `${this.uri}: an earlier agent run for ${what} was killed but the host has not reported it ended; not starting another while it may still run`,
      { code: 'AgentStillRunning' },
    );
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    this.#client = undefined;
    (await connection?.catch(() => null))?.end();
  }

  async #acquire(): Promise<void> {
    if (this.#active < (this.#o.maxChannels ?? 8)) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }

  async #exec(): Promise<ClientChannel> {
    const client = await this.#connect();
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.#drop(client);
        reject(
          new DriverError('unreachable', `${this.uri}: cannot run the agent: ${err.message}`, {
            cause: err,
          }),
        );
      };
      try {
        client.exec(this.#o.agent, (err, channel) => (err ? fail(err) : resolve(channel)));
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  #connect(): Promise<Client> {
    this.#connection ??= this.#open().catch((err: unknown) => {
      this.#connection = undefined;
      throw err;
    });
    return this.#connection;
  }

  #drop(client: Client): void {
    if (this.#client === client) {
      this.#client = undefined;
      this.#connection = undefined;
    }
    client.end();
  }

  async #open(): Promise<Client> {
    let refused: Exclude<HostKeyVerdict, { ok: true }> | undefined;
    const config = this.#config(await this.#o.credentials(), (verdict) => (refused = verdict));
    const client = new Client();
    return new Promise((resolve, reject) => {
      client.once('error', (err) => reject(this.#connectError(err, refused)));
      client.once('ready', () => {
        // Later errors end the connection; `close` then lets the next run reopen it.
        client.on('error', () => {});
        this.#client = client;
        resolve(client);
      });
      client.on('close', () => this.#drop(client));
      try {
        client.connect(config);
      } catch (err) {
        // ssh2 reads the key before it dials: one it cannot read is a configuration error.
        const message = `${this.uri}: cannot use the SSH key: ${(err as Error).message}`;
        reject(new DriverError('rejected', message, { code: 'BAD_SSH_KEY', cause: err }));
      }
    });
  }

  #config(
    { privateKey, passphrase, knownHosts }: SshCredentials,
    onRefused: (verdict: Exclude<HostKeyVerdict, { ok: true }>) => void,
  ): ConnectConfig {
    const { host, port, user } = this.#o;
    // Ask for a host key of a type known_hosts lists, as OpenSSH does.
    const types = knownHosts.keyTypes(host, port).flatMap((t) => ALGORITHMS[t] ?? [t]);
    return {
      host,
      port,
      username: user,
      privateKey,
      ...(passphrase ? { passphrase } : {}),
      readyTimeout: this.#o.connectTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      ...(types.length > 0 ? { algorithms: { serverHostKey: types as never[] } } : {}),
      hostVerifier: (key: Buffer) => {
        const verdict = knownHosts.verify(host, port, key);
        if (!verdict.ok) onRefused(verdict);
        return verdict.ok;
      },
    };
  }

  #connectError(
    err: Error,
    refused: Exclude<HostKeyVerdict, { ok: true }> | undefined,
  ): DriverError {
    // A host that is not the one known_hosts names is never talked to, and trying again
    // will not make it so: not retryable.
    if (refused) {
      return new DriverError('rejected', `${this.uri}: refusing to connect: ${refused.reason}`, {
        code: refused.code,
        cause: err,
      });
    }
    if ((err as { level?: string }).level === 'client-authentication') {
      return new DriverError(
        'rejected',
        `${this.uri}: the host refused our SSH key: ${err.message}`,
        {
          code: 'AUTH_FAILED',
          cause: err,
        },
      );
    }
    return new DriverError('unreachable', `${this.uri}: cannot connect: ${err.message}`, {
      cause: err,
    });
  }

  /**
   * One agent run on its channel. A run past its time (or aborted, or too talkative) is sent
   * SIGKILL and fails once the host reports the agent ended; if the host reports nothing within
   * the kill grace, the call fails anyway and the key stays refused until it does, so a retry
   * never starts a second agent beside one that may still be running. The channel is never
   * closed from this side: the host closes it when its command has exited.
   */
  #talk(
    channel: ClientChannel,
    input: string,
    options: RunOptions,
    key: string,
  ): Promise<AgentOutput> {
    return new Promise((resolve, reject) => {
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      let exited = false;
      let killed: DriverError | undefined;
      let grace: NodeJS.Timeout | undefined;
      const watch = watchRun(this.uri, options, (why) => {
        if (killed) return;
        killed = why;
        watch.stop();
        sendKill(channel);
        const graceMs = this.#o.killGraceMs ?? 5_000;
        grace = setTimeout(() => {
          this.#unconfirmed.add(key);
          reject(
            new DriverError(
              why.kind,
              `${why.message}, but the host did not report it ended within ${graceMs} ms; no other agent run for ${key === '' ? 'the host' : key} starts until it does`,
              { code: 'AgentNotKilled', cause: why },
            ),
          );
        }, graceMs);
      });
      channel.setEncoding('utf8');
      channel.stderr.setEncoding('utf8');
      channel.on('data', watch.collect('stdout'));
      channel.stderr.on('data', watch.collect('stderr'));
      channel.on('exit', (code: number | null, name?: string) => {
        exited = true;
        if (typeof code === 'number') exitCode = code;
        else exitSignal = name ? `SIG${name}` : 'a signal';
      });
      channel.on('close', () => {
        watch.stop();
        clearTimeout(grace);
        // Only the host's exit report says the agent is gone; a lost connection does not.
        if (exited) this.#unconfirmed.delete(key);
        else if (killed) this.#unconfirmed.add(key);
        if (killed) reject(killed);
        else resolve({ ...watch.out, exitCode, signal: exitSignal });
      });
      channel.end(input);
    });
  }
}
