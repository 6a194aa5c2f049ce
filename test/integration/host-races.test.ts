import { unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections } from '../../drivers/libvirt/connections.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import type { DriverError, DriverFactory } from '../../drivers/index.ts';
import type { HostAddress } from '../../registry/types.ts';
import { setHostState } from '../../registry/hosts.ts';
import { hostOperationsQuery, statusQuery } from '../../workflows/index.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { testDrivers as createDriver } from '../support/host-uris.ts';
import { findViolations, takeSnapshot } from '../support/invariants.ts';
import { rejected } from '../support/faulty-driver.ts';

/** A driver call as the worker made it: on which host, which operation, for which VM. */
interface Call {
  host: string;
  op: string;
  vm: string | null;
}

const WATCHED = new Set(
  'status info define undefine start stop shutdown reboot migrate provision deprovision'.split(' '),
);

/** Holds every call of one operation at the driver until released, noting who arrived. */
class Gate {
  readonly arrived: string[] = [];
  #open!: () => void;
  readonly opened = new Promise<void>((r) => (this.#open = r));
  release() {
    this.#open();
  }
}

/**
 * The real driver, watched: every call is recorded, an operation can be held at a gate, and a
 * chosen operation can fail for a chosen VM as a hypervisor would fail it.
 */
class Watch {
  calls: Call[] = [];
  gates = new Map<string, Gate>();
  faults = new Map<string, DriverError>(); // `${op}:${vm}`

  hold(op: string): Gate {
    const gate = new Gate();
    this.gates.set(op, gate);
    return gate;
  }

  factory(real: DriverFactory): DriverFactory {
    return (host: HostAddress) => {
      const driver = real(host) as unknown as Record<string, (...args: unknown[]) => unknown>;
      const watched = async (op: string, args: unknown[]) => {
        const [first] = args;
        const vm =
          typeof first === 'string' ? first : ((first as { name?: string } | null)?.name ?? null);
        this.calls.push({ host: host.name, op, vm });
        const gate = this.gates.get(op);
        if (gate && vm !== null) {
          gate.arrived.push(vm);
          await gate.opened;
        }
        const fault = this.faults.get(`${op}:${vm}`);
        if (fault) throw fault;
        return driver[op]!(...args);
      };
      return new Proxy(driver, {
        get: (target, op) => {
          if (typeof op === 'string' && WATCHED.has(op)) {
            return (...args: unknown[]) => watched(op, args);
          }
          const value = Reflect.get(target, op) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as never;
    };
  }
}

const watch = new Watch();
let h: Harness;
const uris = new Map<string, string>();
const drivers = new Map<string, LibvirtDriver>();
const dead = new Set<string>();

beforeAll(async () => {
  h = await startHarness({ driverFactory: watch.factory(createDriver) });
});
afterAll(async () => {
  await Promise.allSettled([...drivers.values()].map((d) => d.close()));
  await h?.close();
});

async function addHost(name: string, memoryMiB = 16384) {
  const uri = await h.simulatedHost(name, { memoryMiB });
  uris.set(name, uri);
  await h.api.hosts.register({ name, driver: 'libvirt', uri });
}

/** Hosts of earlier tests take no placement, so only the test's own hosts are targets. */
async function onlyThese(hosts: string[]) {
  for (const host of await h.api.hosts.list()) {
    if (!hosts.includes(host.name) && host.state === 'active') {
      await setHostState(h.sql, host.name, 'maintenance');
    }
  }
}

/** The simulated hypervisor itself, behind vagoth's back. */
function hypervisor(host: string): LibvirtDriver {
  let d = drivers.get(host);
  if (!d) drivers.set(host, (d = new LibvirtDriver({ uri: uris.get(host)! })));
  return d;
}

async function until(check: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 1200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never: ${what}`);
}

async function running(name: string, host: string, memoryMiB = 1024) {
  await h.api.vms.create({ name, vcpus: 1, memoryMiB, placement: { host } });
  await until(async () => {
    const now = await h.api.vms.get({ name });
    if (now.state === 'failed') throw new Error(`${name} failed: ${now.error}`);
    return now.state === 'running';
  }, `${name} running`);
}

/** The hosts whose hypervisor runs the VM, among the live ones named. */
async function runningOn(vm: string, hosts: string[]): Promise<string[]> {
  const on: string[] = [];
  for (const host of hosts) {
    if ((await hypervisor(host).info(vm))?.state === 'running') on.push(host);
  }
  return on;
}

async function hostsOf(vms: string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const vm of vms) out[vm] = (await h.api.vms.get({ name: vm })).host;
  return out;
}

/** A VM's entity has nothing running or waiting: no move of it is under way. */
async function idle(vm: string) {
  const status = await h.temporal.workflow.getHandle(`vm:${vm}`).query(statusQuery);
  return status.operation === null && status.queued.length === 0;
}

async function migrations(vm: string, kind: 'migrate' | 'evacuate') {
  const status = await h.temporal.workflow.getHandle(`vm:${vm}`).query(statusQuery);
  return status.operations.filter((op) => op.kind === kind).length;
}

const hostLine = (host: string) =>
  h.temporal.workflow.getHandle(`host:${host}`).query(hostOperationsQuery);

/** The host's workflow ends once its operations are answered. */
async function hostWorkflowEnded(host: string) {
  await until(
    async () =>
      (await h.temporal.workflow.getHandle(`host:${host}`).describe()).status.name !== 'RUNNING',
    `host:${host} ended`,
  );
}

/**
 * Every VM runs on exactly the host the registry records (or is failed with no domain), no key
 * or room is held twice, every VM's room is on its recorded host and nowhere else, no host is
 * over its capacity, nothing is left running. VMs recorded on a dead (fenced) host are
 * checked by the test itself: their host cannot be asked.
 */
async function expectConsistent() {
  const live = [...uris.keys()].filter((host) => !dead.has(host));
  const snapshot = await takeSnapshot({
    sql: h.sql,
    temporal: h.temporal,
    taskQueue: h.taskQueue,
    statuses: async () =>
      new Map(
        await Promise.all(
          live.map(async (host) => [host, await hypervisor(host).status()] as const),
        ),
      ),
  });
  const everyVm = new Set(snapshot.vms.map((vm) => vm.name));
  snapshot.vms = snapshot.vms.filter((vm) => vm.host === null || !dead.has(vm.host));
  const mayStayOpen = (id: string) => id.startsWith('vm:') && everyVm.has(id.slice(3));
  expect(findViolations(snapshot, { mayStayOpen })).toEqual([]);

  const rooms = await h.sql<{ vm: string; host: string; held: string[] }[]>`
    SELECT v.name AS vm, h.name AS host, array_agg(ah.name ORDER BY ah.name) AS held
    FROM nodes v JOIN nodes h ON h.id = v.parent_id
    JOIN allocations a ON a.vm_id = v.id JOIN nodes ah ON ah.id = a.host_id
    WHERE v.type = 'vm' GROUP BY v.name, h.name`;
  for (const r of rooms) expect({ vm: r.vm, held: r.held }).toEqual({ vm: r.vm, held: [r.host] });
  const [counted] = await h.sql<{ unhoused: number }[]>`
    SELECT count(*)::int AS unhoused FROM nodes v
    WHERE v.type = 'vm' AND v.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.vm_id = v.id)`;
  expect(counted?.unhoused).toBe(0);
  for (const host of await h.api.hosts.list()) {
    expect(host.allocated.memoryMiB).toBeLessThanOrEqual(
      host.capacity.memoryMiB * host.ratios.memory,
    );
    expect(host.allocated.vcpus).toBeLessThanOrEqual(host.capacity.vcpus * host.ratios.cpu);
  }
}

const names = (list: { vm: string }[]) => list.map((x) => x.vm).sort();

describe('maintenance racing activate', () => {
  it('activate during a drain stops it: moves under way finish, none starts, the host is active', async () => {
    const hosts = ['ad-src', 'ad-a', 'ad-b'];
    for (const host of hosts) await addHost(host);
    await onlyThese(hosts);
    const vms = ['ad-vm-1', 'ad-vm-2', 'ad-vm-3', 'ad-vm-4', 'ad-vm-5', 'ad-vm-6'];
    for (const vm of vms) await running(vm, 'ad-src');

    const gate = watch.hold('migrate');
    const drain = h.api.hosts.maintenance({ name: 'ad-src' });
    await until(() => gate.arrived.length > 0, 'a move under way');
    let atActivate: Record<string, string | null> = {};
    let idleAtActivate: boolean[] = [];
    const activated = h.api.hosts.activate({ name: 'ad-src' }).then(async (host) => {
      atActivate = await hostsOf(vms);
      idleAtActivate = await Promise.all(vms.map(idle));
      return host;
    });
    await until(
      async () => (await hostLine('ad-src')).line.some((op) => op.stopping !== null),
      'the drain told to stop',
    );
    watch.gates.delete('migrate');
    gate.release();

    expect((await activated).state).toBe('active');
    const report = await drain;
    // When activate answered, nothing was moving off the host any more.
    expect(idleAtActivate).toEqual(vms.map(() => true));
    expect(await hostsOf(vms)).toEqual(atActivate);
    expect((await h.api.hosts.get({ name: 'ad-src' })).state).toBe('active');

    // The moves that had begun finished; the drain reached no other VM, and says why.
    expect(names(report.moved)).toEqual([...gate.arrived].sort());
    expect(report.moved.length).toBeGreaterThan(0);
    expect(report.stayed.length).toBeGreaterThan(0);
    expect(report.failed).toEqual([]);
    expect([...names(report.moved), ...names(report.stayed)].sort()).toEqual(vms);
    for (const s of report.stayed) expect(s.reason).toMatch(/ad-src was activated/);
    for (const m of report.moved) {
      expect(atActivate[m.vm]).toBe(m.to);
      expect(await runningOn(m.vm, hosts)).toEqual([m.to]);
    }
    for (const s of report.stayed) {
      expect(atActivate[s.vm]).toBe('ad-src');
      expect(await runningOn(s.vm, hosts)).toEqual(['ad-src']);
    }
    expect((await h.api.hosts.get({ name: 'ad-src' })).vms).toBe(report.stayed.length);
    await hostWorkflowEnded('ad-src');
    await expectConsistent();
    // Back in placement.
    await running('ad-new', 'ad-src');
  });

  it('maintenance asked twice at once is one drain: one report, each VM moved once', async () => {
    const hosts = ['dd-src', 'dd-a', 'dd-b'];
    for (const host of hosts) await addHost(host);
    await onlyThese(hosts);
    const vms = ['dd-vm-1', 'dd-vm-2', 'dd-vm-3', 'dd-vm-4', 'dd-vm-5'];
    for (const vm of vms) await running(vm, 'dd-src');

    const [first, second] = await Promise.all([
      h.api.hosts.maintenance({ name: 'dd-src' }),
      h.api.hosts.maintenance({ name: 'dd-src' }),
    ]);
    expect(second).toEqual(first);
    expect(first.stayed).toEqual([]);
    expect(names(first.moved)).toEqual(vms);
    for (const vm of vms) expect(await migrations(vm, 'migrate')).toBe(1);
    expect(await h.api.hosts.get({ name: 'dd-src' })).toMatchObject({
      state: 'maintenance',
      vms: 0,
      allocated: { vcpus: 0, memoryMiB: 0 },
    });
    await hostWorkflowEnded('dd-src');
    await expectConsistent();
  });

  it.each([
    ['activate, then maintenance', ['activate', 'maintenance'] as const],
    ['maintenance, then activate', ['maintenance', 'activate'] as const],
  ])('fired together (%s), they end in one consistent state', async (label, order) => {
    const tag = label.startsWith('activate') ? 'am' : 'ma';
    const hosts = [`${tag}-src`, `${tag}-a`, `${tag}-b`];
    for (const host of hosts) await addHost(host);
    await onlyThese(hosts);
    const src = hosts[0]!;
    const vms = [1, 2, 3, 4, 5, 6].map((i) => `${tag}-vm-${i}`);
    for (const vm of vms) await running(vm, src);

    let atActivate: Record<string, string | null> = {};
    const fire = {
      activate: () =>
        h.api.hosts.activate({ name: src }).then(async () => {
          atActivate = await hostsOf(vms);
        }),
      maintenance: () => h.api.hosts.maintenance({ name: src }),
    };
    const outcomes = await Promise.all(order.map((op) => fire[op]()));
    const report = outcomes[order.indexOf('maintenance')] as Awaited<
      ReturnType<typeof fire.maintenance>
    >;
    const state = (await h.api.hosts.get({ name: src })).state;
    const now = await hostsOf(vms);
    expect(report.failed).toEqual([]);
    expect([...names(report.moved), ...names(report.stayed)].sort()).toEqual(vms);
    for (const m of report.moved) expect(now[m.vm]).toBe(m.to);
    for (const s of report.stayed) expect(now[s.vm]).toBe(src);
    if (state === 'maintenance') {
      // Activate came first; the drain after it moved everything.
      expect(report.stayed).toEqual([]);
      expect((await h.api.hosts.get({ name: src })).vms).toBe(0);
    } else {
      // The drain came first and activate stopped it: nothing moved after activate answered,
      // and every VM the drain did not move was left for that reason.
      expect(state).toBe('active');
      expect(now).toEqual(atActivate);
      for (const s of report.stayed) expect(s.reason).toMatch(/was activated/);
    }
    await hostWorkflowEnded(src);
    await expectConsistent();
  });

  it('maintenance after an activate drains again: the later request wins', async () => {
    const hosts = ['ld-src', 'ld-a'];
    for (const host of hosts) await addHost(host);
    await onlyThese(hosts);
    const vms = ['ld-vm-1', 'ld-vm-2', 'ld-vm-3', 'ld-vm-4', 'ld-vm-5'];
    for (const vm of vms) await running(vm, 'ld-src');

    const gate = watch.hold('migrate');
    const first = h.api.hosts.maintenance({ name: 'ld-src' });
    await until(() => gate.arrived.length > 0, 'a move under way');
    const activated = h.api.hosts.activate({ name: 'ld-src' });
    await until(
      async () => (await hostLine('ld-src')).line.some((op) => op.kind === 'activate'),
      'activate in line',
    );
    const second = h.api.hosts.maintenance({ name: 'ld-src' });
    await until(
      async () =>
        (await hostLine('ld-src')).line.filter((op) => op.kind === 'maintenance').length === 2,
      'the second drain in line',
    );
    watch.gates.delete('migrate');
    gate.release();
    const [r1, , r2] = await Promise.all([first, activated, second]);
    expect(r1.stayed.length).toBeGreaterThan(0);
    // The second drain moved what the first left, and the host stays in maintenance, empty.
    expect(r2.stayed).toEqual([]);
    expect(names(r2.moved)).toEqual(names(r1.stayed));
    expect(await h.api.hosts.get({ name: 'ld-src' })).toMatchObject({
      state: 'maintenance',
      vms: 0,
    });
    for (const vm of vms) expect(await runningOn(vm, hosts)).toEqual(['ld-a']);
    await hostWorkflowEnded('ld-src');
    await expectConsistent();
  });

  it("a VM decommissioned while the drain waits to move it is no longer the host's: the drain goes on", async () => {
    const hosts = ['gd-src', 'gd-a'];
    for (const host of hosts) await addHost(host);
    await onlyThese(hosts);
    const vms = ['gd-vm-1', 'gd-vm-2', 'gd-vm-3', 'gd-vm-4', 'gd-vm-5', 'gd-vm-6'];
    for (const vm of vms) await running(vm, 'gd-src');

    const gate = watch.hold('migrate');
    const drain = h.api.hosts.maintenance({ name: 'gd-src' });
    // The drain moves a few at a time: some VMs wait their turn behind the held moves.
    await until(() => gate.arrived.length > 0, 'a move under way');
    await until(async () => (await Promise.all(vms.map(idle))).some(Boolean), 'a VM waiting');
    const waiting = vms.filter((vm) => !gate.arrived.includes(vm));
    const victim = waiting.at(-1)!;
    await h.api.vms.decommission({ name: victim });
    await until(
      async () => !(await h.api.vms.list()).some((vm) => vm.name === victim),
      `${victim} gone`,
    );
    watch.gates.delete('migrate');
    gate.release();

    const report = await drain;
    const rest = vms.filter((vm) => vm !== victim);
    expect(names(report.moved)).toEqual(rest);
    expect(report.stayed).toEqual([]);
    expect(report.failed).toEqual([]);
    for (const vm of rest) expect(await runningOn(vm, hosts)).toEqual(['gd-a']);
    expect(await runningOn(victim, hosts)).toEqual([]);
    await hostWorkflowEnded('gd-src');
    await expectConsistent();
  });
});

describe('evacuate failing half-way', () => {
  it('reports who moved, who stayed and who failed, and a second run finishes only the rest', async () => {
    const survivors = ['eh-a', 'eh-b'];
    await addHost('eh-dead', 16384);
    for (const host of survivors) await addHost(host, 2048);
    await onlyThese(['eh-dead', ...survivors]);
    // No survivor can take a big one; the small ones and the broken one fit in any order.
    const big = ['eh-big-1', 'eh-big-2'];
    const small = ['eh-small-1', 'eh-small-2'];
    for (const vm of big) await running(vm, 'eh-dead', 3072);
    for (const vm of small) await running(vm, 'eh-dead', 1024);
    await running('eh-broken', 'eh-dead', 512);
    const all = [...big, ...small, 'eh-broken'];

    // The host dies; the monitor marks it down. Its fencing is the test's word.
    const uri = uris.get('eh-dead')!;
    const lease = connections.lease(uri);
    lease.drop(await lease.get());
    await unlink(fileURLToPath(uri.replace(/^test:/, 'file:')));
    dead.add('eh-dead');
    for (let i = 0; i < 10 && (await h.api.hosts.get({ name: 'eh-dead' })).state !== 'down'; i++) {
      await h.api.hosts.poll({ name: 'eh-dead' });
    }
    expect((await h.api.hosts.get({ name: 'eh-dead' })).state).toBe('down');

    // The target's hypervisor refuses the broken VM's disk.
    watch.faults.set('provision:eh-broken', rejected('storage pool refused the volume'));
    watch.calls = [];
    const gate = watch.hold('provision');
    const evacuation = h.api.hosts.evacuate({ name: 'eh-dead', fenced: true });
    await until(() => gate.arrived.length > 0, 'a restart under way');
    // A fenced host coming back mid-evacuation is refused, saying why.
    const refused = h.api.hosts.activate({ name: 'eh-dead' });
    await expect(refused).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await expect(refused).rejects.toThrow(/being evacuated/);
    watch.gates.delete('provision');
    gate.release();
    const report = await evacuation;

    expect(names(report.moved)).toEqual(small);
    expect(names(report.stayed)).toEqual(big);
    for (const s of report.stayed) expect(s.reason).toMatch(/no host can take this VM/);
    expect(report.failed).toMatchObject([
      {
        vm: 'eh-broken',
        on: expect.stringMatching(/^eh-[ab]$/),
        reason: expect.stringMatching(/storage pool refused/),
      },
    ]);
    // The fenced host was never called.
    expect(watch.calls.filter((c) => c.host === 'eh-dead')).toEqual([]);

    for (const m of report.moved) {
      expect(await h.api.vms.get({ name: m.vm })).toMatchObject({ state: 'running', host: m.to });
      expect(await runningOn(m.vm, survivors)).toEqual([m.to]);
    }
    for (const vm of big) {
      expect(await h.api.vms.get({ name: vm })).toMatchObject({ host: 'eh-dead' });
      expect(await runningOn(vm, survivors)).toEqual([]);
    }
    const broken = await h.api.vms.get({ name: 'eh-broken' });
    expect(broken).toMatchObject({ state: 'failed', host: report.failed[0]!.on });
    expect(broken.error).toMatch(/storage pool refused/);
    expect(await h.api.hosts.get({ name: 'eh-dead' })).toMatchObject({
      vms: 2,
      allocated: { memoryMiB: 2 * 3072 },
    });
    await hostWorkflowEnded('eh-dead');
    await expectConsistent();

    // Room is made; evacuating again takes the two that stayed, and touches nothing else.
    await addHost('eh-c', 8192);
    const evacuatedBefore = await Promise.all(all.map((vm) => migrations(vm, 'evacuate')));
    watch.calls = [];
    const again = await h.api.hosts.evacuate({ name: 'eh-dead', fenced: true });
    expect(again.stayed).toEqual([]);
    expect(again.failed).toEqual([]);
    expect(again.moved).toEqual(big.map((vm) => ({ vm, to: 'eh-c' })));
    expect(watch.calls.filter((c) => c.host === 'eh-dead')).toEqual([]);
    expect(watch.calls.filter((c) => c.vm !== null && !big.includes(c.vm))).toEqual([]);
    expect(await Promise.all(all.map((vm) => migrations(vm, 'evacuate')))).toEqual(
      all.map((vm, i) => evacuatedBefore[i]! + (big.includes(vm) ? 1 : 0)),
    );
    for (const vm of big) expect(await runningOn(vm, ['eh-c', ...survivors])).toEqual(['eh-c']);
    for (const m of report.moved) {
      expect((await h.api.vms.get({ name: m.vm })).host).toBe(m.to);
    }
    expect(await h.api.hosts.get({ name: 'eh-dead' })).toMatchObject({
      vms: 0,
      allocated: { vcpus: 0, memoryMiB: 0 },
    });
    await hostWorkflowEnded('eh-dead');
    await expectConsistent();

    // The VM that failed where it went is reinstalled there once its hypervisor is fixed.
    const failedOn = report.failed[0]!.on;
    await expect(h.api.vms.start({ name: 'eh-broken' })).rejects.toThrow(
      /only reprovision or decommission/,
    );
    watch.faults.delete('provision:eh-broken');
    await h.api.vms.reprovision({ name: 'eh-broken' });
    await until(
      async () => (await h.api.vms.get({ name: 'eh-broken' })).state === 'running',
      'eh-broken running again',
    );
    expect(await h.api.vms.get({ name: 'eh-broken' })).toMatchObject({
      host: failedOn,
      error: null,
    });
    expect(await runningOn('eh-broken', ['eh-c', ...survivors])).toEqual([failedOn]);
    await expectConsistent();
    await lease.release();
  });
});
