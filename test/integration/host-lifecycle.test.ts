import { unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections } from '../../drivers/libvirt/connections.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { setHostState } from '../../registry/hosts.ts';
import { REPORT_ONLY } from '../../monitor/reconcile.ts';
import { monitorCluster } from '../../workflows/index.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
const uris = new Map<string, string>();
const drivers = new Map<string, LibvirtDriver>();

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.allSettled([...drivers.values()].map((d) => d.close()));
  await h?.close();
});

async function addHost(name: string, memoryMiB = 8192, diskGiB?: number) {
  const uri = await h.simulatedHost(name, { memoryMiB });
  uris.set(name, uri);
  await h.api.hosts.register({ name, driver: 'libvirt', uri, ...(diskGiB ? { diskGiB } : {}) });
}

/** The simulated hypervisor itself, behind vagoth's back (connections to it are shared). */
function hypervisor(host: string): LibvirtDriver {
  let d = drivers.get(host);
  if (!d) drivers.set(host, (d = new LibvirtDriver({ uri: uris.get(host)! })));
  return d;
}

async function running(name: string, host: string) {
  await h.api.vms.create({ name, vcpus: 1, memoryMiB: 1024, placement: { host } });
  for (let i = 0; i < 240; i++) {
    const now = await h.api.vms.get({ name });
    if (now.state === 'running') return now;
    if (now.state === 'failed') throw new Error(`${name} failed: ${now.error}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} never ran`);
}

/** The hosts whose hypervisor has the domain running, among those named. */
async function runningOn(vm: string, hosts: string[]): Promise<string[]> {
  const on: string[] = [];
  for (const host of hosts) {
    if ((await hypervisor(host).info(vm))?.state === 'running') on.push(host);
  }
  return on;
}

describe('remove', () => {
  it('is refused while VMs are on the host, saying how many, and accepted once empty', async () => {
    await addHost('rm-1');
    await running('rm-vm-1', 'rm-1');
    await running('rm-vm-2', 'rm-1');
    const refused = h.api.hosts.remove({ name: 'rm-1' });
    await expect(refused).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await expect(refused).rejects.toThrow(/still holding 2 VM/);
    expect((await h.api.hosts.get({ name: 'rm-1' })).vms).toBe(2);

    await h.api.vms.decommission({ name: 'rm-vm-1' });
    await h.api.vms.decommission({ name: 'rm-vm-2' });
    for (let i = 0; i < 200 && (await h.api.hosts.get({ name: 'rm-1' })).vms > 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
    }
    await expect(h.api.hosts.remove({ name: 'rm-1' })).resolves.toEqual({ removed: 'rm-1' });
    await expect(h.api.hosts.get({ name: 'rm-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(h.api.hosts.remove({ name: 'rm-1' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('maintenance', () => {
  it('drains every VM to other hosts, moves their room, and takes no new placement', async () => {
    const hosts = ['mt-src', 'mt-a', 'mt-b'];
    for (const host of hosts) await addHost(host);
    const vms = ['mt-vm-1', 'mt-vm-2', 'mt-vm-3'];
    for (const vm of vms) await running(vm, 'mt-src');
    await h.api.vms.stop({ name: 'mt-vm-3' }); // a stopped VM moves too (cold), and stays stopped
    for (
      let i = 0;
      i < 100 && (await h.api.vms.get({ name: 'mt-vm-3' })).state !== 'stopped';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 250));
    }

    const report = await h.api.hosts.maintenance({ name: 'mt-src' });
    expect(report.stayed).toEqual([]);
    expect(report.moved.map((m) => m.vm).sort()).toEqual(vms);

    expect(await h.api.hosts.get({ name: 'mt-src' })).toMatchObject({
      state: 'maintenance',
      vms: 0,
      allocated: { vcpus: 0, memoryMiB: 0 },
    });
    let elsewhere = 0;
    for (const vm of vms) {
      const now = await h.api.vms.get({ name: vm });
      expect(now.host).not.toBe('mt-src');
      expect(report.moved.find((m) => m.vm === vm)?.to).toBe(now.host);
      expect(await hypervisor('mt-src').info(vm)).toBeNull();
      if (vm === 'mt-vm-3') {
        expect(now.state).toBe('stopped');
        expect(await runningOn(vm, hosts)).toEqual([]);
      } else {
        expect(now.state).toBe('running');
        expect(await runningOn(vm, hosts)).toEqual([now.host]);
      }
      elsewhere += 1024;
    }
    const others = await Promise.all(['mt-a', 'mt-b'].map((name) => h.api.hosts.get({ name })));
    expect(others.reduce((sum, host) => sum + host.allocated.memoryMiB, 0)).toBe(elsewhere);

    // The drained host takes nothing new: the allocator passes it over, and a VM pinned to it
    // is never placed there.
    const plan = await h.api.placement.explain({ vcpus: 1, memoryMiB: 512 });
    expect(plan.rejected['mt-src']).toMatch(/maintenance/);
    await h.api.vms.create({
      name: 'mt-new',
      vcpus: 1,
      memoryMiB: 512,
      placement: { host: 'mt-src' },
    });
    for (let i = 0; i < 200; i++) {
      const now = await h.api.vms.get({ name: 'mt-new' }).catch(() => null);
      if (now === null || now.state === 'failed') break;
      expect(now.host).toBeNull();
      await new Promise((r) => setTimeout(r, 250));
    }
    expect((await h.api.hosts.get({ name: 'mt-src' })).vms).toBe(0);

    // Draining again finds nothing to do; activate puts it back into placement.
    expect(await h.api.hosts.maintenance({ name: 'mt-src' })).toEqual({
      host: 'mt-src',
      moved: [],
      stayed: [],
      failed: [],
    });
    expect((await h.api.hosts.activate({ name: 'mt-src' })).state).toBe('active');
    await running('mt-back', 'mt-src');
  });

  it('lists a VM that cannot move, with why, and leaves it running where it was', async () => {
    await addHost('lone-src');
    await running('lone-vm', 'lone-src');
    // Every other host is in maintenance or full: nowhere to go.
    for (const host of await h.api.hosts.list()) {
      if (host.name !== 'lone-src') await setHostState(h.sql, host.name, 'maintenance');
    }
    const report = await h.api.hosts.maintenance({ name: 'lone-src' });
    expect(report.moved).toEqual([]);
    expect(report.stayed).toMatchObject([{ vm: 'lone-vm', reason: expect.any(String) }]);
    expect(await h.api.vms.get({ name: 'lone-vm' })).toMatchObject({
      state: 'running',
      host: 'lone-src',
    });
    expect(await runningOn('lone-vm', ['lone-src'])).toEqual(['lone-src']);
  });

  it('refuses an unknown host by name', async () => {
    await expect(h.api.hosts.maintenance({ name: 'nope' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(h.api.hosts.activate({ name: 'nope' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('evacuate', () => {
  it('is refused without fenced: true, and for a host that is active or still answers', async () => {
    await addHost('ev-live');
    await running('ev-live-vm', 'ev-live');
    const unfenced = h.api.hosts.evacuate({ name: 'ev-live', fenced: false as true });
    await expect(unfenced).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(unfenced).rejects.toThrow(/fenced/);
    const active = h.api.hosts.evacuate({ name: 'ev-live', fenced: true });
    await expect(active).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await expect(active).rejects.toThrow(/is active/);
    await setHostState(h.sql, 'ev-live', 'maintenance');
    await expect(h.api.hosts.evacuate({ name: 'ev-live', fenced: true })).rejects.toThrow(
      /answering/,
    );
    // Nothing moved.
    expect(await h.api.vms.get({ name: 'ev-live-vm' })).toMatchObject({
      state: 'running',
      host: 'ev-live',
    });
    expect(await runningOn('ev-live-vm', ['ev-live'])).toEqual(['ev-live']);
    await h.api.hosts.activate({ name: 'ev-live' });
  });

  it('restarts a dead host’s VMs elsewhere, each on exactly one host', async () => {
    const survivors = ['ev-a', 'ev-b'];
    await addHost('ev-dead', 8192, 10);
    for (const host of survivors) await addHost(host);
    // Only the evacuation's targets have room: the hosts of earlier tests are out of the way.
    for (const host of await h.api.hosts.list()) {
      if (!['ev-dead', ...survivors].includes(host.name)) {
        await setHostState(h.sql, host.name, 'maintenance');
      }
    }
    const vms = ['ev-vm-1', 'ev-vm-2', 'ev-vm-3'];
    for (const vm of vms) await running(vm, 'ev-dead');
    // One more, with a disk, whose domain went behind vagoth's back while the host still
    // answered: the monitor takes it off the host, its volume there still on record.
    const { operation } = await h.api.vms.create({
      name: 'ev-lost',
      vcpus: 1,
      memoryMiB: 256,
      diskGiB: 1,
      placement: { host: 'ev-dead' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const lostVm = await h.api.vms.get({ name: 'ev-lost' });
    await hypervisor('ev-dead').undefine({ id: lostVm.id, name: 'ev-lost' });
    await h.temporal.workflow.execute(monitorCluster, {
      args: [{ hosts: ['ev-dead'], policies: { ...REPORT_ONLY, missing: 'unassign' } }],
      taskQueue: h.taskQueue,
      workflowId: `monitor-ev-${lostVm.id}`,
    });
    const lost = await h.api.vms.get({ name: 'ev-lost' });
    expect(lost).toMatchObject({ host: null });
    expect(lost.keys.filter((k) => k.startsWith('vol:ev-dead:'))).toHaveLength(1);

    // The hypervisor goes away (as in monitor.test.ts); the monitor marks it down.
    const uri = uris.get('ev-dead')!;
    const lease = connections.lease(uri);
    lease.drop(await lease.get());
    await unlink(fileURLToPath(uri.replace(/^test:/, 'file:')));
    for (let i = 0; i < 10 && (await h.api.hosts.get({ name: 'ev-dead' })).state !== 'down'; i++) {
      await h.api.hosts.poll({ name: 'ev-dead' });
    }
    expect((await h.api.hosts.get({ name: 'ev-dead' })).state).toBe('down');

    const report = await h.api.hosts.evacuate({ name: 'ev-dead', fenced: true });
    expect(report.stayed).toEqual([]);
    expect(report.moved.map((m) => m.vm).sort()).toEqual(vms);
    expect(report.note).toMatch(/freshly provisioned/);
    for (const vm of vms) {
      const now = await h.api.vms.get({ name: vm });
      expect(now.state).toBe('running');
      expect(survivors).toContain(now.host);
      expect(await runningOn(vm, survivors)).toEqual([now.host]);
    }
    expect(await h.api.hosts.get({ name: 'ev-dead' })).toMatchObject({
      vms: 0,
      allocated: { vcpus: 0, memoryMiB: 0 },
    });
    const room = await Promise.all(survivors.map((name) => h.api.hosts.get({ name })));
    expect(room.reduce((sum, host) => sum + host.allocated.memoryMiB, 0)).toBe(3 * 1024);
    // The volume left there is off the record with the fenced host: the lost VM's
    // decommission does not wait for a host that will never answer, nor does the removal.
    expect((await h.api.vms.get({ name: 'ev-lost' })).keys.some((k) => k.startsWith('vol:'))).toBe(
      false,
    );
    const gone = await h.api.vms.decommission({ name: 'ev-lost' });
    expect(await settle(h, gone.operation)).toMatchObject({ status: 'completed' });
    // Evacuating again has nothing left to do; the empty dead host can now be removed.
    expect((await h.api.hosts.evacuate({ name: 'ev-dead', fenced: true })).moved).toEqual([]);
    await h.api.hosts.remove({ name: 'ev-dead' });
    await lease.release();
  });
});
