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
}

// A known_hosts type names the key; RSA keys sign with any of these algorithms.
const ALGORITHMS: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Runs the agent over one SSH connection per host, kept open and reopened when it drops. */
export class SshTransport implements Transport {
  readonly uri: string;
  readonly #o: SshTransportOptions;
  #connection: Promise<Client> | undefined;
  /** The open connection #connection resolved to, so a drop can forget it at once. */
  #client: Client | undefined;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

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
    await this.#acquire();
    try {
      const reused = this.#client !== undefined;
      const channel = await this.#exec().catch((err: unknown) => {
        // A reused connection may have died unnoticed; nothing was sent, so try a fresh one.
        if (!reused || (err instanceof DriverError && err.kind !== 'unreachable')) throw err;
        return this.#exec();
      });
      return await this.#talk(channel, input, options);
    } finally {
      this.#release();
    }
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

  #talk(channel: ClientChannel, input: string, options: RunOptions): Promise<AgentOutput> {
    return new Promise((resolve, reject) => {
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      // The host may be as stuck as its agent: fail now, and let the channel close when it can.
      const watch = watchRun(this.uri, options, (why) => {
        try {
          channel.signal('KILL');
        } catch {
          // the channel is closing already
        }
        channel.close();
        watch.stop();
        reject(why);
      });
      channel.setEncoding('utf8');
      channel.stderr.setEncoding('utf8');
      channel.on('data', watch.collect('stdout'));
      channel.stderr.on('data', watch.collect('stderr'));
      channel.on('exit', (code: number | null, name?: string) => {
        if (typeof code === 'number') exitCode = code;
        else exitSignal = name ? `SIG${name}` : 'a signal';
      });
      channel.on('close', () => {
        watch.stop();
        resolve({ ...watch.out, exitCode, signal: exitSignal });
      });
      channel.end(input);
    });
  }
}
