import { tmpdir } from 'node:os';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GeatsOptions } from '../../drivers/geats/index.ts';
import {
  generateSshKey,
  startSshHost,
  type SshHost,
  type SshKeyPair,
} from '../support/ssh-host.ts';
import { writeGeatsHost, type GeatsHostOptions, type GeatsTestHost } from './geats-host.ts';

/** The driver options for tests: short timeouts, SSH settings as given. */
export function geatsTestOptions(
  overrides: Partial<Omit<GeatsOptions, 'ssh'>> = {},
  ssh: Partial<GeatsOptions['ssh']> = {},
): GeatsOptions {
  return {
    timeoutMs: 15_000,
    longTimeoutMs: 60_000,
    vmType: 'kvm',
    storageType: 'local',
    // Tests write their agents under the temp directory (support/host-uris.ts).
    localAgents: [tmpdir()],
    ...overrides,
    ssh: { knownHostsFile: '/dev/null', connectTimeoutMs: 10_000, ...ssh },
  };
}

export interface GeatsSshHost {
  geats: GeatsTestHost;
  sshd: SshHost;
  /** `geats+ssh://vagoth@127.0.0.1:<port>/<agent>`. */
  uri: string;
  clientKey: SshKeyPair;
  /** Files the driver reads: the client's private key and a known_hosts naming this host. */
  keyFile: string;
  knownHostsFile: string;
  ssh: GeatsOptions['ssh'];
}

/**
 * Hosts one worker reaches with one key and one known_hosts file, as VAGOTH_SSH_KEY and
 * VAGOTH_SSH_KNOWN_HOSTS give it: a migration's source driver reaches its target so.
 */
export interface SshFleet {
  clientKey: SshKeyPair;
  knownHostsFile: string;
}

/** A geats host behind its own SSH server, and the files a driver needs to reach it. */
export async function startGeatsSshHost(
  root: string,
  name: string,
  options: GeatsHostOptions & { ignoreSignals?: boolean; fleet?: SshFleet } = {},
): Promise<GeatsSshHost> {
  const geats = await writeGeatsHost(root, name, options);
  const clientKey = options.fleet?.clientKey ?? generateSshKey();
  const sshd = await startSshHost({
    agent: geats.agent,
    user: 'vagoth',
    authorizedKey: clientKey.publicKey,
    ignoreSignals: options.ignoreSignals ?? false,
  });
  const keyFile = path.join(geats.dir, 'id_ed25519');
  const knownHostsFile = options.fleet?.knownHostsFile ?? path.join(geats.dir, 'known_hosts');
  await writeFile(keyFile, clientKey.privateKey, { mode: 0o600 });
  if (options.fleet) await appendFile(knownHostsFile, `${sshd.knownHostsLine}\n`);
  else await writeFile(knownHostsFile, `${sshd.knownHostsLine}\n`);
  return {
    geats,
    sshd,
    uri: `geats+ssh://vagoth@127.0.0.1:${sshd.port}${geats.agent}`,
    clientKey,
    keyFile,
    knownHostsFile,
    ssh: { privateKeyFile: keyFile, knownHostsFile, connectTimeoutMs: 10_000 },
  };
}
