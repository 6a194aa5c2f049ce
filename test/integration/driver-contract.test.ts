import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createGeatsDriver } from '../../drivers/geats/index.ts';
import { connections, type ConnectionLease } from '../../drivers/libvirt/connections.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { writeSimulatedHost } from '../../drivers/libvirt/simulated-host.ts';
import { driverContract, type ContractHost } from '../contract/driver-contract.ts';
import { writeGeatsHost, type GeatsTestHost } from '../contract/geats-host.ts';
import { geatsTestOptions, startGeatsSshHost, type SshFleet } from '../contract/geats-ssh-host.ts';
import { generateSshKey } from '../support/ssh-host.ts';
import { foreignDomainXml, volumeNames } from '../support/libvirt-hosts.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'vagoth-contract-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const geatsHosts = new Map<ContractHost, GeatsTestHost>();
const geatsExtras = {
  migrates: true,
  defineForeign: (host: ContractHost, name: string) => geatsHosts.get(host)!.defineForeign(name),
  volumeNames: async (host: ContractHost) =>
    Object.keys((await geatsHosts.get(host)!.state()).volumes),
};

driverContract({
  name: 'geats, local agent',
  async create(label) {
    const geats = await writeGeatsHost(path.join(root, 'local'), label);
    const driver = createGeatsDriver(geats.uri, geatsTestOptions());
    const host: ContractHost = {
      driver,
      hostAddress: { name: label, driver: 'geats', uri: geats.uri },
      cleanup: () => driver.close(),
    };
    geatsHosts.set(host, geats);
    return host;
  },
  ...geatsExtras,
});

let fleet: SshFleet | undefined;
driverContract({
  name: 'geats over SSH',
  async create(label) {
    fleet ??= { clientKey: generateSshKey(), knownHostsFile: path.join(root, 'known_hosts') };
    const dir = path.join(root, 'ssh');
    const { geats, sshd, uri, ssh } = await startGeatsSshHost(dir, label, { fleet });
    const driver = createGeatsDriver(uri, geatsTestOptions({}, ssh));
    const host: ContractHost = {
      driver,
      hostAddress: { name: label, driver: 'geats', uri },
      async cleanup() {
        await driver.close();
        await sshd.close();
      },
    };
    geatsHosts.set(host, geats);
    return host;
  },
  ...geatsExtras,
});

// libvirt migrates between two test:// hosts too (cold: the test driver cannot go live).
// A second connection to a test:///<file> URI is another hypervisor: the hooks go through the
// driver's own shared connection.
const libvirtLeases = new Map<ContractHost, ConnectionLease>();
driverContract({
  name: 'libvirt, test driver',
  async create(label) {
    const uri = await writeSimulatedHost(path.join(root, 'libvirt'), label, {
      cpus: 8,
      memoryMiB: 16384,
    });
    const driver = new LibvirtDriver({ uri });
    const lease = connections.lease(uri);
    const host: ContractHost = {
      driver,
      hostAddress: { name: label, driver: 'libvirt', uri },
      async cleanup() {
        await driver.close();
        await lease.release();
      },
    };
    libvirtLeases.set(host, lease);
    return host;
  },
  migrates: true,
  async defineForeign(host, name) {
    const conn = await libvirtLeases.get(host)!.get();
    (await conn.defineDomainXML(foreignDomainXml(name))).free();
  },
  volumeNames: async (host) => volumeNames(await libvirtLeases.get(host)!.get(), 'vagoth'),
});
