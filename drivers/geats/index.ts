import { readFile } from 'node:fs/promises';
import type { HostAddress } from '../../registry/types.ts';
import { DriverError } from '../driver.ts';
import { GeatsDriver } from './geats-driver.ts';
import { KnownHosts } from './known-hosts.ts';
import { LocalTransport } from './local-transport.ts';
import { SshTransport, type SshCredentials } from './ssh-transport.ts';
import { parseGeatsUri } from './uri.ts';

export { GeatsDriver, type GeatsDriverOptions } from './geats-driver.ts';
export { KnownHosts, fingerprint } from './known-hosts.ts';
export { LocalTransport } from './local-transport.ts';
export { SshTransport } from './ssh-transport.ts';
export { GeatsUriError, isGeatsUri, parseGeatsUri, type GeatsUri } from './uri.ts';

export interface SshOptions {
  /** The private key vagoth logs in with; unset: geats+ssh hosts cannot be reached. */
  privateKeyFile?: string | undefined;
  passphrase?: string | undefined;
  /** OpenSSH known_hosts: a host whose key is not listed there is never talked to. */
  knownHostsFile: string;
  connectTimeoutMs: number;
  /** How long a host has to report a killed agent ended (SshTransport's default otherwise). */
  killGraceMs?: number | undefined;
}

export interface GeatsOptions {
  timeoutMs: number;
  longTimeoutMs: number;
  vmType: string;
  storageType: string;
  ssh: SshOptions;
  /** Local agents (or directories of them) the operator allows (VAGOTH_GEATS_AGENTS); unset: none. */
  localAgents?: readonly string[];
}

async function readOrEmpty(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

function credentials(uri: string, ssh: SshOptions): () => Promise<SshCredentials> {
  return async () => {
    if (!ssh.privateKeyFile) {
      throw new DriverError(
        'rejected',
        `${uri}: no SSH private key is configured (VAGOTH_SSH_KEY)`,
        {
          code: 'NO_SSH_KEY',
        },
      );
    }
    const privateKey = await readFile(ssh.privateKeyFile).catch((err: Error) => {
      throw new DriverError('rejected', `${uri}: cannot read the SSH key: ${err.message}`, {
        code: 'NO_SSH_KEY',
        cause: err,
      });
    });
    const knownHosts = KnownHosts.parse(await readOrEmpty(ssh.knownHostsFile), ssh.knownHostsFile);
    return { privateKey, passphrase: ssh.passphrase, knownHosts };
  };
}

/** The driver for a geats host at `uri` (geats:///path/to/agent or geats+ssh://user@host[:port]/path). */
export function createGeatsDriver(
  uri: string,
  options: GeatsOptions,
  /** How a migration's source reaches its target; by default the target's URI, these options. */
  peer?: (host: HostAddress) => GeatsDriver,
): GeatsDriver {
  const parsed = parseGeatsUri(uri);
  const transport =
    parsed.transport === 'local'
      ? new LocalTransport({ uri, agent: parsed.agent, allowed: options.localAgents ?? [] })
      : new SshTransport({
          uri,
          host: parsed.host,
          port: parsed.port,
          user: parsed.user,
          agent: parsed.agent,
          credentials: credentials(uri, options.ssh),
          connectTimeoutMs: options.ssh.connectTimeoutMs,
          ...(options.ssh.killGraceMs === undefined
            ? {}
            : { killGraceMs: options.ssh.killGraceMs }),
        });
  return new GeatsDriver({
    ...options,
    transport,
    peer: peer ?? ((host) => createGeatsDriver(host.uri, options)),
  });
}
