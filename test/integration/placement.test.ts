import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setHostState } from '../../registry/hosts.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

type CreateInput = Parameters<Harness['api']['vms']['create']>[0];
type Placement = NonNullable<CreateInput['placement']>;

interface HostSpec {
  cpus?: number;
  memoryMiB?: number;
  cpuRatio?: number;
  diskGiB?: number;
  tags?: Record<string, string>;
}

// One harness for the file; each describe block registers hosts tagged with a pool of its own
// and its VMs require that tag, so the blocks do not see each other's hosts.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function register(name: string, spec: HostSpec = {}) {
  const { cpus = 8, memoryMiB = 16384, ...rest } = spec;
  const uri = await h.simulatedHost(name, { cpus, memoryMiB });
  return h.api.hosts.register({ name, driver: 'libvirt', uri, ...rest });
}

/** Creates a VM of 1 vCPU and 512 MiB unless told otherwise, and waits for the outcome. */
async function create(name: string, placement: Placement, size: Partial<CreateInput> = {}) {
  const { operation } = await h.api.vms.create({
    name,
    vcpus: 1,
    memoryMiB: 512,
    ...size,
    placement,
  });
  return { name, ...(await settle(h, operation)) };
}

/** What the hypervisor itself runs: the domain names on the host, sorted. */
async function domainsOn(host: string): Promise<string[]> {
  const record = await h.api.hosts.get({ name: host });
  const status = await h.worker.drivers.get(record).status();
  return status.domains.map((d) => d.name).sort();
}

async function vmRows(prefix: string): Promise<string[]> {
  const rows = await h.sql<{ name: string }[]>`
    SELECT name FROM nodes WHERE type = 'vm' AND starts_with(name, ${prefix}) ORDER BY name`;
  return rows.map((r) => r.name);
}

async function keysHeldBy(prefix: string): Promise<string[]> {
  const rows = await h.sql<{ key: string }[]>`
    SELECT k.key FROM node_keys k JOIN nodes n ON n.id = k.node_id
    WHERE starts_with(n.name, ${prefix}) ORDER BY k.key`;
  return rows.map((r) => r.key);
}

async function allocationsOf(prefix: string): Promise<number> {
  const [row] = await h.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM allocations a JOIN nodes n ON n.id = a.vm_id
    WHERE starts_with(n.name, ${prefix})`;
  return row!.n;
}

const sorted = (names: string[]) => [...names].sort();

describe('placement.explain', () => {
  const POOL = { pool: 'explain', ssd: 'yes' };
  // A VM of this shape fits ex-good only; every other ex- host fails exactly one rule.
  const shape = { vcpus: 4, memoryMiB: 4096, diskGiB: 50 };
  const rules = { tags: POOL, antiAffinity: ['ex-db'], affinity: ['ex-app'] };

  beforeAll(async () => {
    await register('ex-good', { diskGiB: 100, tags: POOL });
    await register('ex-mem', { memoryMiB: 2048, diskGiB: 100, tags: POOL });
    await register('ex-cpu', { cpus: 2, cpuRatio: 1.5, diskGiB: 100, tags: POOL });
    await register('ex-disk', { diskGiB: 10, tags: POOL });
    await register('ex-notag', { diskGiB: 100, tags: { pool: 'explain' } });
    await register('ex-maint', { diskGiB: 100, tags: POOL });
    await register('ex-anti', { diskGiB: 100, tags: POOL });
    await register('ex-other', { diskGiB: 100, tags: POOL });
    await setHostState(h.sql, 'ex-maint', 'maintenance');
    const app = await create('ex-app-1', { host: 'ex-good', affinity: ['ex-app'] });
    const db = await create('ex-db-1', { host: 'ex-anti', antiAffinity: ['ex-db'] });
    expect([app.status, db.status]).toEqual(['completed', 'completed']);
  });

  const explainHosts = (rejected: Record<string, string>) =>
    Object.fromEntries(Object.entries(rejected).filter(([name]) => name.startsWith('ex-')));

  it('names the host a VM would go to and why each other host would not take it', async () => {
    const plan = await h.api.placement.explain({ ...shape, placement: rules });
    expect(plan.host).toBe('ex-good');
    expect(plan.candidates).toEqual(['ex-good']);
    expect(explainHosts(plan.rejected)).toEqual({
      'ex-mem': 'not enough memory (2048 MiB free)',
      'ex-cpu': 'not enough vCPUs (3 free at ratio 1.5)',
      'ex-disk': 'not enough disk (10 GiB free)',
      'ex-notag': 'missing tag ssd=yes',
      'ex-maint': 'host is maintenance',
      'ex-anti': 'anti-affinity group ex-db already on this host',
      'ex-other': 'affinity group ex-app is on ex-good',
    });
    // Every host is accounted for: a candidate or a reason.
    const hosts = (await h.api.hosts.list()).map((x) => x.name);
    expect(sorted([...plan.candidates, ...Object.keys(plan.rejected)])).toEqual(sorted(hosts));
  });

  it('without the affinity group, the emptier of the two fitting hosts comes first', async () => {
    const plan = await h.api.placement.explain({
      ...shape,
      placement: { tags: POOL, antiAffinity: ['ex-db'] },
    });
    expect(plan.host).toBe('ex-other');
    expect(plan.candidates).toEqual(['ex-other', 'ex-good']);
  });

  it('with a hint, answers for that host alone', async () => {
    expect(await h.api.placement.explain({ ...shape, placement: { host: 'ex-other' } })).toEqual({
      host: 'ex-other',
      candidates: ['ex-other'],
      rejected: {},
    });
    // The other hosts were never in question, so they get no reason.
    expect(await h.api.placement.explain({ ...shape, placement: { host: 'ex-mem' } })).toEqual({
      host: null,
      candidates: [],
      rejected: { 'ex-mem': 'not enough memory (2048 MiB free)' },
    });
    expect(await h.api.placement.explain({ ...shape, placement: { host: 'ex-maint' } })).toEqual({
      host: null,
      candidates: [],
      rejected: { 'ex-maint': 'host is maintenance' },
    });
    expect(await h.api.placement.explain({ ...shape, placement: { host: 'nowhere' } })).toEqual({
      host: null,
      candidates: [],
      rejected: { nowhere: 'no such host' },
    });
  });

  it('claims nothing', async () => {
    const hostsBefore = await h.api.hosts.list();
    const vmsBefore = await vmRows('');
    for (let i = 0; i < 5; i++) {
      await h.api.placement.explain({ ...shape, placement: rules });
      await h.api.placement.explain({ vcpus: 1, memoryMiB: 16, placement: {} });
    }
    expect(await h.api.hosts.list()).toEqual(hostsBefore);
    expect(await vmRows('')).toEqual(vmsBefore);
    expect((await h.api.hosts.get({ name: 'ex-good' })).allocated).toEqual({
      vcpus: 1,
      memoryMiB: 512,
      diskGiB: 0,
    });
  });
});

describe('vms.create honours each rule', () => {
  it('required tags: only tagged hosts get the VMs', async () => {
    await register('tg-ssd-1', { tags: { pool: 'tags', ssd: 'yes' } });
    await register('tg-ssd-2', { tags: { pool: 'tags', ssd: 'yes' } });
    // The roomiest host of the pool, so spread would pick it if tags were ignored.
    await register('tg-hdd', { cpus: 32, memoryMiB: 65536, tags: { pool: 'tags', ssd: 'no' } });
    const placement = { tags: { pool: 'tags', ssd: 'yes' } };
    const done = await Promise.all(
      ['tg-vm-1', 'tg-vm-2', 'tg-vm-3', 'tg-vm-4'].map((name) => create(name, placement)),
    );
    expect(done.map((d) => d.status)).toEqual(Array(4).fill('completed'));
    expect(await domainsOn('tg-hdd')).toEqual([]);
    expect(sorted([...(await domainsOn('tg-ssd-1')), ...(await domainsOn('tg-ssd-2'))])).toEqual([
      'tg-vm-1',
      'tg-vm-2',
      'tg-vm-3',
      'tg-vm-4',
    ]);

    const gpu = await create('tg-gpu', { tags: { pool: 'tags', gpu: 'yes' } });
    expect(gpu.status).toBe('failed');
    expect(gpu.error?.type).toBe('NoCapacity');
    expect(gpu.error?.message).toContain('tg-hdd: missing tag gpu=yes');
    expect(await vmRows('tg-gpu')).toEqual([]);
  });

  it('a hint: the VM goes to that host, which spread would not have chosen', async () => {
    await register('hn-small', { cpus: 2, memoryMiB: 2048, tags: { pool: 'hint' } });
    await register('hn-big', { cpus: 16, memoryMiB: 65536, tags: { pool: 'hint' } });
    const free = await h.api.placement.explain({
      vcpus: 1,
      memoryMiB: 512,
      placement: { tags: { pool: 'hint' } },
    });
    expect(free.host).toBe('hn-big');

    const done = await create('hn-vm', { host: 'hn-small' });
    expect(done.status).toBe('completed');
    expect((await h.api.vms.get({ name: 'hn-vm' })).host).toBe('hn-small');
    expect(await domainsOn('hn-small')).toEqual(['hn-vm']);
    expect(await domainsOn('hn-big')).toEqual([]);

    // A hint does not override the other rules.
    const tagged = await create('hn-ssd', { host: 'hn-big', tags: { ssd: 'yes' } });
    expect(tagged).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    expect(await domainsOn('hn-big')).toEqual([]);
    expect(await vmRows('hn-ssd')).toEqual([]);
  });

  it('a host in maintenance gets nothing, even with room to spare', async () => {
    await register('mn-down', { cpus: 16, memoryMiB: 65536, tags: { pool: 'maint' } });
    await register('mn-up', { cpus: 4, memoryMiB: 2048, tags: { pool: 'maint' } });
    await setHostState(h.sql, 'mn-down', 'maintenance');
    const placement = { tags: { pool: 'maint' } };
    const done = await Promise.all(
      ['mn-vm-1', 'mn-vm-2'].map((name) => create(name, placement, { memoryMiB: 1024 })),
    );
    expect(done.map((d) => d.status)).toEqual(['completed', 'completed']);
    expect(await domainsOn('mn-up')).toEqual(['mn-vm-1', 'mn-vm-2']);

    const third = await create('mn-vm-3', placement, { memoryMiB: 1024 });
    expect(third).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    expect(third.error?.message).toContain('mn-down: host is maintenance');
    expect(third.error?.message).toContain('mn-up: not enough memory (0 MiB free)');

    const hinted = await create('mn-hinted', { host: 'mn-down' });
    expect(hinted).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });

    expect(await domainsOn('mn-down')).toEqual([]);
    expect((await h.api.hosts.get({ name: 'mn-down' })).allocated).toEqual({
      vcpus: 0,
      memoryMiB: 0,
      diskGiB: 0,
    });
    expect(await vmRows('mn-')).toEqual(['mn-vm-1', 'mn-vm-2']);
  });

  it('disk: a VM goes only where its disk fits', async () => {
    await register('dk-big', { diskGiB: 100, tags: { pool: 'disk' } });
    // More memory, so spread prefers it whenever the disk allows.
    await register('dk-none', { memoryMiB: 32768, tags: { pool: 'disk' } });
    const placement = { tags: { pool: 'disk' } };

    expect(await create('dk-vm-1', placement, { diskGiB: 60 })).toMatchObject({
      status: 'completed',
    });
    expect(await domainsOn('dk-big')).toEqual(['dk-vm-1']);
    expect((await h.api.hosts.get({ name: 'dk-big' })).allocated.diskGiB).toBe(60);

    const second = await create('dk-vm-2', placement, { diskGiB: 60 });
    expect(second).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    expect(second.error?.message).toContain('dk-big: not enough disk (40 GiB free)');
    expect(second.error?.message).toContain('dk-none: not enough disk (0 GiB free)');

    expect(await create('dk-vm-3', placement, { diskGiB: 40 })).toMatchObject({
      status: 'completed',
    });
    expect(await create('dk-vm-4', placement, { diskGiB: 0 })).toMatchObject({
      status: 'completed',
    });
    expect(await domainsOn('dk-big')).toEqual(['dk-vm-1', 'dk-vm-3']);
    expect(await domainsOn('dk-none')).toEqual(['dk-vm-4']);
    expect((await h.api.hosts.get({ name: 'dk-big' })).free.diskGiB).toBe(0);
  });

  it('spread picks the emptier host, pack the fuller one', async () => {
    await register('po-a', { memoryMiB: 8192, tags: { pool: 'policy' } });
    await register('po-b', { memoryMiB: 8192, tags: { pool: 'policy' } });
    const tags = { pool: 'policy' };
    expect(await create('po-seed', { host: 'po-a' }, { memoryMiB: 2048 })).toMatchObject({
      status: 'completed',
    });
    // Free memory after each step, a / b: 6144 / 8192, then as commented.
    const steps: Array<[string, Placement, string]> = [
      ['po-spread-1', { tags, policy: 'spread' }, 'po-b'], // 6144 / 7168
      ['po-pack-1', { tags, policy: 'pack' }, 'po-a'], // 5120 / 7168
      ['po-pack-2', { tags, policy: 'pack' }, 'po-a'], // 4096 / 7168
      ['po-default', { tags }, 'po-b'], // spread by default: 4096 / 6144
      ['po-spread-2', { tags, policy: 'spread' }, 'po-b'],
    ];
    for (const [name, placement, expected] of steps) {
      expect(await create(name, placement, { memoryMiB: 1024 })).toMatchObject({
        status: 'completed',
      });
      expect((await h.api.vms.get({ name })).host).toBe(expected);
    }
    expect(await domainsOn('po-a')).toEqual(['po-pack-1', 'po-pack-2', 'po-seed']);
    expect(await domainsOn('po-b')).toEqual(['po-default', 'po-spread-1', 'po-spread-2']);
  });

  it('overcommit: 2 CPUs at ratio 4 take 8 one-vCPU VMs, and not a 9th', async () => {
    await register('oc', { cpus: 2, cpuRatio: 4, memoryMiB: 65536, tags: { pool: 'oc' } });
    const placement = { tags: { pool: 'oc' } };
    const names = Array.from({ length: 8 }, (_, i) => `oc-vm-${i + 1}`);
    const done = await Promise.all(names.map((name) => create(name, placement)));
    expect(done.map((d) => d.status)).toEqual(Array(8).fill('completed'));
    expect(await domainsOn('oc')).toEqual(sorted(names));
    expect(await h.api.hosts.get({ name: 'oc' })).toMatchObject({
      capacity: { vcpus: 2 },
      ratios: { cpu: 4 },
      allocated: { vcpus: 8 },
      free: { vcpus: 0 },
      vms: 8,
    });

    const ninth = await create('oc-vm-9', placement);
    expect(ninth.status).toBe('failed');
    expect(ninth.error?.type).toBe('NoCapacity');
    expect(ninth.error?.message).toContain('oc: not enough vCPUs (0 free at ratio 4)');
    expect(await domainsOn('oc')).toEqual(sorted(names));
    expect(await vmRows('oc-vm-9')).toEqual([]);
    expect((await h.api.hosts.get({ name: 'oc' })).allocated.vcpus).toBe(8);
  });
});

describe('a hinted create the hinted host refuses', () => {
  beforeAll(async () => {
    await register('hr-maint', { tags: { pool: 'refuse' } });
    await register('hr-plain', { tags: { pool: 'refuse' } });
    await register('hr-small', { memoryMiB: 1024, tags: { pool: 'refuse' } });
    await setHostState(h.sql, 'hr-maint', 'maintenance');
  });

  it.each([
    ['in maintenance', 'hr-maint', {}, 'host is maintenance'],
    ['without the tag', 'hr-plain', { tags: { ssd: 'yes' } }, 'missing tag ssd=yes'],
    ['without the memory', 'hr-small', {}, 'not enough memory (1024 MiB free)'],
  ])('a host %s: the VM fails with that host’s reason', async (_what, host, rules, why) => {
    const name = `hr-vm-${host}`;
    const done = await create(name, { host, ...rules }, { memoryMiB: 2048 });
    expect(done).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    expect(await domainsOn(host)).toEqual([]);
    expect(await vmRows(name)).toEqual([]);
    // placement.explain knows the reason; the create should report the same one, not
    // "no such host" for a host that is registered.
    const plan = await h.api.placement.explain({
      vcpus: 1,
      memoryMiB: 2048,
      placement: { host, ...rules },
    });
    expect(plan.rejected).toEqual({ [host]: why });
    expect(done.error?.message).toContain(`${host}: ${why}`);
  });
});

describe('anti-affinity under concurrency', () => {
  it('10 VMs of group db at once on 3 hosts: 3 run, one per host; 7 leave nothing', async () => {
    const hosts = ['aa-1', 'aa-2', 'aa-3'];
    for (const name of hosts) await register(name, { tags: { pool: 'anti' } });
    await h.api.networks.create({ name: 'aa-net', cidr: '172.16.60.0/24' });
    const names = Array.from({ length: 10 }, (_, i) => `db-${i}`);
    const started = await Promise.all(
      names.map((name) =>
        h.api.vms.create({
          name,
          vcpus: 1,
          memoryMiB: 512,
          nics: [{ network: 'aa-net' }],
          placement: { tags: { pool: 'anti' }, antiAffinity: ['db'] },
        }),
      ),
    );
    const outcomes = await Promise.all(
      started.map(async ({ vm, operation }) => ({
        name: vm.name,
        ...(await settle(h, operation)),
      })),
    );
    const ran = outcomes.filter((o) => o.status === 'completed').map((o) => o.name);
    const refused = outcomes.filter((o) => o.status !== 'completed');
    expect(ran).toHaveLength(3);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.status).toBe('failed');
      expect(r.error?.type).toBe('NoCapacity');
      expect(r.error?.message).toMatch(/anti-affinity group db already on this host/);
    }

    // The hypervisors: one db VM each, and together exactly the three that ran.
    const onHosts = await Promise.all(hosts.map(domainsOn));
    for (const domains of onHosts) expect(domains).toHaveLength(1);
    expect(sorted(onHosts.flat())).toEqual(sorted(ran));
    expect(
      sorted((await h.api.vms.list()).filter((v) => v.name.startsWith('db-')).map((v) => v.host!)),
    ).toEqual(hosts);

    // The refused ones: no row, no key, no allocation.
    expect(await vmRows('db-')).toEqual(sorted(ran));
    const keys = await keysHeldBy('db-');
    expect(keys.filter((k) => k.startsWith('ip:'))).toHaveLength(3);
    expect(keys.filter((k) => k.startsWith('mac:'))).toHaveLength(3);
    expect(keys).toHaveLength(6);
    expect(await allocationsOf('db-')).toBe(3);
    expect((await h.api.networks.get({ name: 'aa-net' })).used).toBe(3);
    for (const host of hosts) {
      expect(await h.api.hosts.get({ name: host })).toMatchObject({
        vms: 1,
        allocated: { vcpus: 1, memoryMiB: 512 },
      });
    }
  });
});

describe('affinity', () => {
  const hosts = ['af-1', 'af-2', 'af-3'];
  beforeAll(async () => {
    for (const name of hosts) await register(name, { tags: { pool: 'affinity' } });
  });

  it('VMs created one after another all land on the first one’s host', async () => {
    const placement = { tags: { pool: 'affinity' }, affinity: ['app'] };
    const first = await create('app-1', placement);
    expect(first.status).toBe('completed');
    const home = (await h.api.vms.get({ name: 'app-1' })).host!;
    for (const name of ['app-2', 'app-3', 'app-4']) {
      // Spread alone would now go elsewhere: the home host is the fullest of the pool.
      const alone = await h.api.placement.explain({
        vcpus: 1,
        memoryMiB: 512,
        placement: { tags: { pool: 'affinity' } },
      });
      expect(alone.host).not.toBe(home);
      expect(await create(name, placement)).toMatchObject({ status: 'completed' });
    }
    expect(await domainsOn(home)).toEqual(['app-1', 'app-2', 'app-3', 'app-4']);
    for (const other of hosts.filter((x) => x !== home)) expect(await domainsOn(other)).toEqual([]);
  });

  it('VMs created at once all share one host', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `burst-app-${i}`);
    const placement = { tags: { pool: 'affinity' }, affinity: ['app-burst'] };
    const done = await Promise.all(names.map((name) => create(name, placement)));
    // There is room for all six on any host, so a lost race must not refuse one.
    expect(done.map((d) => [d.name, d.status])).toEqual(names.map((n) => [n, 'completed']));
    const holding = [];
    for (const host of hosts) {
      const burst = (await domainsOn(host)).filter((d) => d.startsWith('burst-app-'));
      if (burst.length > 0) holding.push({ host, burst });
    }
    expect(holding).toHaveLength(1);
    expect(holding[0]!.burst).toEqual(sorted(names));
  });

  it('the group’s host is found however many hosts have more room', async () => {
    // More hosts than the 16 candidates the free-memory index hands the allocator: once the
    // group's host is the fullest, spread ranks it last.
    const wide = Array.from({ length: 17 }, (_, i) => `wd-${String(i).padStart(2, '0')}`);
    await Promise.all(
      wide.map((name) => register(name, { cpus: 2, memoryMiB: 2048, tags: { pool: 'wide' } })),
    );
    const placement = { tags: { pool: 'wide' }, affinity: ['wide-app'] };
    expect(await create('wide-1', placement)).toMatchObject({ status: 'completed' });
    const home = (await h.api.vms.get({ name: 'wide-1' })).host!;
    const plan = await h.api.placement.explain({ vcpus: 1, memoryMiB: 512, placement });
    expect(plan.host).toBe(home);

    const second = await create('wide-2', placement);
    expect(second.error).toBeNull();
    expect(second.status).toBe('completed');
    expect(await domainsOn(home)).toEqual(['wide-1', 'wide-2']);
  });
});

describe('decommission', () => {
  it('returns the host’s allocation to zero, and a VM that did not fit fits again', async () => {
    await register('dc-1', { cpus: 2, memoryMiB: 2048, diskGiB: 20, tags: { pool: 'dc' } });
    const placement = { tags: { pool: 'dc' } };
    expect(
      await create('dc-first', placement, { vcpus: 2, memoryMiB: 2048, diskGiB: 20 }),
    ).toMatchObject({ status: 'completed' });
    expect(await h.api.hosts.get({ name: 'dc-1' })).toMatchObject({
      allocated: { vcpus: 2, memoryMiB: 2048, diskGiB: 20 },
      free: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
      vms: 1,
    });

    const waiting = { vcpus: 1, memoryMiB: 1024, diskGiB: 10 };
    const refused = await create('dc-waiting', placement, waiting);
    expect(refused).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });

    const { operation } = await h.api.vms.decommission({ name: 'dc-first' });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await h.api.hosts.get({ name: 'dc-1' })).toMatchObject({
      allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
      free: { vcpus: 2, memoryMiB: 2048, diskGiB: 20 },
      vms: 0,
    });
    expect(await domainsOn('dc-1')).toEqual([]);
    expect(await allocationsOf('dc-')).toBe(0);

    expect(await create('dc-waiting', placement, waiting)).toMatchObject({
      status: 'completed',
    });
    expect((await h.api.vms.get({ name: 'dc-waiting' })).host).toBe('dc-1');
    expect(await domainsOn('dc-1')).toEqual(['dc-waiting']);
  });
});
