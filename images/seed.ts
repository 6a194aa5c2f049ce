import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GuestConfig, NicDefinition } from '../registry/types.ts';

const run = promisify(execFile);

/** What a NIC's network tells its guest: the prefix, gateway and DNS servers. */
export interface SeedNetwork {
  cidr: string;
  gateway: string | null;
  dns: string[];
}

export interface SeedInput {
  vmId: string;
  hostname: string;
  guest: GuestConfig;
  nics: Array<NicDefinition & { net: SeedNetwork | null }>;
}

/** The three files of a cloud-init NoCloud seed, as their bytes go on the ISO. */
export interface SeedFiles {
  'meta-data': string;
  'network-config': string;
  'user-data': string;
}

/**
 * The seed's files (pure). Written as JSON, which YAML reads as it is, so nothing a caller
 * gave (a key's comment, a name) can change the documents' structure.
 * - meta-data: the instance id (the VM's id), its hostname, and its SSH public keys.
 * - network-config, version 2: each NIC matched by its MAC; one with a claimed IP gets it with
 *   its network's prefix and DNS servers, and the first whose network has a gateway gets the
 *   default route; one with no IP is left to DHCP.
 * - user-data: the caller's document as given; none: an empty cloud-config.
 */
export function seedFiles(input: SeedInput): SeedFiles {
  const ethernets: Record<string, unknown> = {};
  let routed = false;
  input.nics.forEach((nic, i) => {
    const match = { match: { macaddress: nic.mac } };
    if (!nic.ip || !nic.net) {
      ethernets[`nic${i}`] = { ...match, dhcp4: true };
      return;
    }
    const prefix = nic.net.cidr.split('/')[1];
    const route = !routed && nic.net.gateway !== null;
    if (route) routed = true;
    ethernets[`nic${i}`] = {
      ...match,
      dhcp4: false,
      addresses: [`${nic.ip}/${prefix}`],
      ...(route ? { routes: [{ to: 'default', via: nic.net.gateway }] } : {}),
      ...(nic.net.dns.length > 0 ? { nameservers: { addresses: nic.net.dns } } : {}),
    };
  });
  return {
    'meta-data': `${JSON.stringify(
      {
        'instance-id': input.vmId,
        'local-hostname': input.hostname,
        'public-keys': input.guest.sshAuthorizedKeys,
      },
      null,
      2,
    )}\n`,
    'network-config': `${JSON.stringify({ version: 2, ethernets }, null, 2)}\n`,
    'user-data': input.guest.userData ?? '#cloud-config\n{}\n',
  };
}

/**
 * The seed as an ISO 9660 image labelled `cidata` (Joliet and Rock Ridge names), built with
 * Debian's genisoimage in a directory of its own that is removed after. What genisoimage
 * prints is never passed on: a failure says only that the build failed.
 */
export async function buildSeedIso(files: SeedFiles): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-seed-'));
  try {
    const names = Object.keys(files) as Array<keyof SeedFiles>;
    for (const name of names) await writeFile(path.join(dir, name), files[name], { mode: 0o600 });
    const iso = path.join(dir, 'seed.iso');
    try {
      await run(
        'genisoimage',
        ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', ...names],
        { cwd: dir, timeout: 60_000, maxBuffer: 1024 * 1024 },
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new SeedError(
        e.code === 'ENOENT'
          ? 'genisoimage is not installed on this worker (bash scripts/setup.sh installs it)'
          : 'genisoimage could not build the seed',
        { cause: err },
      );
    }
    return await readFile(iso);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The worker could not build a seed: its own failing, retried. */
export class SeedError extends Error {
  override name = 'SeedError';
}
