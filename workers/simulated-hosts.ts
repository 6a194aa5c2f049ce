import path from 'node:path';
import type { createCaller } from '../api/router.ts';
import { volumesOn } from '../registry/vm-volumes.ts';
import type { DriverPool } from '../drivers/index.ts';
import { writeSimulatedHost } from '../drivers/libvirt/simulated-host.ts';
import type { Sql } from '../registry/db.ts';
import { listHosts } from '../registry/hosts.ts';
import { listVms } from '../registry/vms.ts';

const SIZES = [
  { cpus: 16, memoryMiB: 32768, diskGiB: 1000, tags: { rack: 'r1', ssd: 'yes' } },
  { cpus: 8, memoryMiB: 16384, diskGiB: 500, tags: { rack: 'r1' } },
  { cpus: 8, memoryMiB: 16384, diskGiB: 500, tags: { rack: 'r2' } },
];

/**
 * Registers `count` hypervisors simulated by libvirt's test driver (sim-1, sim-2, ...), through
 * the API as any client would. Already registered ones are left as they are.
 */
export async function registerSimulatedHosts(
  api: ReturnType<typeof createCaller>,
  dataDir: string,
  count: number,
): Promise<string[]> {
  const names: string[] = [];
  const known = new Set((await api.hosts.list()).map((h) => h.name));
  for (let i = 1; i <= count; i++) {
    const name = `sim-${i}`;
    names.push(name);
    if (known.has(name)) continue;
    const uri = await writeSimulatedHost(
      path.join(dataDir, 'hosts'),
      name,
      SIZES[(i - 1) % SIZES.length]!,
    );
    await api.hosts.register({ name, driver: 'libvirt', uri });
  }
  return names;
}

/** A `default` network for a first try (10.0.0.0/16), unless the registry has one. */
export async function ensureDefaultNetwork(api: ReturnType<typeof createCaller>): Promise<void> {
  if ((await api.networks.list()).some((n) => n.name === 'default')) return;
  await api.networks.create({
    name: 'default',
    cidr: '10.0.0.0/16',
    gateway: '10.0.0.1',
    reserved: [],
  });
}

/**
 * A simulated hypervisor lives in the worker's memory, so it starts empty each time. Puts back
 * the domains the registry records on simulated hosts, so the registry and the hosts agree
 * again after a restart. Real hosts are never touched here.
 */
export async function restoreSimulatedDomains(sql: Sql, drivers: DriverPool): Promise<number> {
  const simulated = new Map(
    (await listHosts(sql)).filter((h) => h.uri.startsWith('test://')).map((h) => [h.name, h]),
  );
  let restored = 0;
  for (const vm of await listVms(sql)) {
    const host = vm.host ? simulated.get(vm.host) : undefined;
    if (!host || (vm.state !== 'running' && vm.state !== 'stopped')) continue;
    const driver = drivers.get(host);
    if (await driver.info(vm.name)) continue;
    const spec = {
      id: vm.id,
      name: vm.name,
      definition: vm.definition,
      volumes: volumesOn(vm.keys, vm.host, vm.host),
    };
    if (spec.volumes.length > 0) await driver.provision(spec);
    await driver.define(spec);
    if (vm.state === 'running') await driver.start(vm.name);
    restored++;
  }
  return restored;
}
