import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settle, startHarness, type Harness } from '../support/harness.ts';

// Hosts that can carry exactly 150 VMs of 1 vCPU and 512 MiB: two bound by memory
// (50 x 512 MiB), one by vCPUs at its overcommit ratio (10 CPUs x 5 = 50).
const HOSTS = [
  { name: 'mem-a', cpus: 8, memoryMiB: 50 * 512, cpuRatio: 8 },
  { name: 'mem-b', cpus: 8, memoryMiB: 50 * 512 + 100, cpuRatio: 8 },
  { name: 'cpu-c', cpus: 10, memoryMiB: 64 * 1024, cpuRatio: 5 },
];

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  for (const { name, cpus, memoryMiB, cpuRatio } of HOSTS) {
    const uri = await h.simulatedHost(name, { cpus, memoryMiB });
    await h.api.hosts.register({ name, driver: 'libvirt', uri, cpuRatio });
  }
  await h.api.networks.create({ name: 'pool', cidr: '172.16.50.0/24', gateway: '172.16.50.1' });
});
afterAll(async () => {
  await h?.close();
});

async function domainsPerHost(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const host of await h.api.hosts.list()) {
    out[host.name] = (await h.worker.drivers.get(host).status()).domains.map((d) => d.name);
  }
  return out;
}

describe('200 creates at once for room for 150', () => {
  it('places exactly 150, refuses 50 with NoCapacity, and holds nothing twice', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    const started = await Promise.all(
      names.map((name) =>
        h.api.vms.create({ name, vcpus: 1, memoryMiB: 512, nics: [{ network: 'pool' }] }),
      ),
    );
    const outcomes = await Promise.all(started.map(({ operation }) => settle(h, operation)));
    const completed = outcomes.filter((o) => o.status === 'completed');
    const failed = outcomes.filter((o) => o.status === 'failed');
    expect(completed).toHaveLength(150);
    expect(failed).toHaveLength(50);
    for (const f of failed) expect(f.error).toMatchObject({ type: 'NoCapacity' });

    const vms = await h.api.vms.list();
    expect(vms).toHaveLength(150);
    expect(vms.every((v) => v.state === 'running')).toBe(true);

    // No host over its capacity at its ratio, and the registry agrees with the hypervisors.
    const domains = await domainsPerHost();
    for (const host of await h.api.hosts.list()) {
      expect(host.allocated.vcpus).toBeLessThanOrEqual(host.capacity.vcpus * host.ratios.cpu);
      expect(host.allocated.memoryMiB).toBeLessThanOrEqual(
        host.capacity.memoryMiB * host.ratios.memory,
      );
      expect(host.vms).toBe(50);
      expect(domains[host.name]!.sort()).toEqual(
        vms
          .filter((v) => v.host === host.name)
          .map((v) => v.name)
          .sort(),
      );
    }

    // Every VM runs exactly once, and every address and MAC is held once.
    const everyDomain = Object.values(domains).flat();
    expect(new Set(everyDomain).size).toBe(150);
    expect(everyDomain).toHaveLength(150);
    const ips = vms.map((v) => v.definition.nics[0]!.ip);
    const macs = vms.map((v) => v.definition.nics[0]!.mac);
    expect(new Set(ips).size).toBe(150);
    expect(new Set(macs).size).toBe(150);
    expect(ips).not.toContain('172.16.50.1');

    // The 50 refusals left nothing: no row, no key, no allocation.
    const [keys] = await h.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM node_keys WHERE key NOT LIKE 'hypervisor:%'`;
    const [allocs] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM allocations`;
    expect(keys!.n).toBe(300);
    expect(allocs!.n).toBe(150);
    expect((await h.api.networks.get({ name: 'pool' })).used).toBe(150);
  }, 240_000);

  it('every request asking for the same fixed IP: exactly one wins', async () => {
    const ip = '172.16.50.250';
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        h.api.vms.create({
          name: `same-ip-${i}`,
          vcpus: 1,
          memoryMiB: 16,
          nics: [{ network: 'pool', ip }],
        }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.flatMap((r) =>
      r.status === 'rejected' ? [r.reason as { code: string; message: string }] : [],
    );
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(199);
    for (const err of lost) {
      expect(err.code).toBe('CONFLICT');
      expect(err.message).toContain(`ip:${ip}`);
    }
    const holders = await h.sql<{ name: string }[]>`
      SELECT n.name FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE k.key = ${`ip:${ip}`}`;
    expect(holders).toHaveLength(1);
    const [stray] = await h.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM nodes WHERE name LIKE 'same-ip-%'`;
    expect(stray!.n).toBe(1);
  }, 240_000);
});
