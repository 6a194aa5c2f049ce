import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery } from '../../workflows/index.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** What the simulated hypervisors themselves report, through the worker's own connections. */
async function domainsOn(host: string) {
  const found = await h.api.hosts.get({ name: host });
  const status = await h.worker.drivers.get(found).status();
  return status.domains;
}

describe('a VM through its whole life', () => {
  it('registers hosts with the capacity their hypervisor reports', async () => {
    const uri = await h.simulatedHost('hv1', { cpus: 4, memoryMiB: 8192 });
    const host = await h.api.hosts.register({ name: 'hv1', driver: 'libvirt', uri });
    expect(host).toMatchObject({
      name: 'hv1',
      capacity: { vcpus: 4, memoryMiB: 8192 },
      allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
    });
    await h.api.hosts.register({
      name: 'hv2',
      driver: 'libvirt',
      uri: await h.simulatedHost('hv2'),
    });
    expect((await h.api.hosts.list()).map((x) => x.name)).toEqual(['hv1', 'hv2']);
    // The registration is on record, with the workflow run that made it.
    const events = (await h.api.nodes.events({ name: 'hv1', limit: 10 })).items;
    const registered = events.find((e) => e.action === 'create');
    expect(registered).toMatchObject({
      action: 'create',
      actor: 'worker',
      operation: expect.stringMatching(/^host:hv1:register\//),
    });
    // In the same transaction, its hypervisor's key.
    expect(events.find((e) => e.action === 'claim')).toMatchObject({
      operation: registered?.operation,
    });
  });

  it('creates a VM that runs on exactly one host, then decommissions it and frees its IP', async () => {
    const { vm, operation } = await h.api.vms.create({
      name: 'web-1',
      vcpus: 2,
      memoryMiB: 1024,
      nics: [{ network: 'default', ip: '10.0.0.5' }],
    });
    expect(vm.keys).toContain('ip:10.0.0.5');
    expect(vm.definition.nics[0]?.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(operation).toMatchObject({ id: 'vm:web-1', updateId: 'create', kind: 'create' });
    expect(operation.url).toContain(encodeURIComponent('vm:web-1'));

    const done = await settle(h, operation);
    expect(done).toMatchObject({ status: 'completed', kind: 'create', error: null });
    const running = await h.api.vms.get({ name: 'web-1' });
    expect(running.state).toBe('running');
    // The VM's workflow says the same, and goes on serving it.
    const status = await h.temporal.workflow.getHandle(operation.id).query(statusQuery);
    expect(status).toMatchObject({ name: 'web-1', state: 'running', host: running.host });
    const onHosts = [...(await domainsOn('hv1')), ...(await domainsOn('hv2'))].filter(
      (d) => d.name === 'web-1',
    );
    // The host runs what was asked for: one domain, with the VM's size and claimed MAC.
    expect(onHosts).toEqual([
      {
        name: 'web-1',
        state: 'running',
        vagothId: vm.id,
        vcpus: vm.definition.vcpus,
        memoryMiB: vm.definition.memoryMiB,
        macs: vm.definition.nics.map((n) => n.mac),
      },
    ]);
    expect((await domainsOn(running.host!)).map((d) => d.name)).toContain('web-1');

    const { operation: teardown } = await h.api.vms.decommission({ name: 'web-1' });
    expect(await settle(h, teardown)).toMatchObject({ status: 'completed', kind: 'decommission' });
    await expect(h.api.vms.get({ name: 'web-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect([...(await domainsOn('hv1')), ...(await domainsOn('hv2'))]).toEqual([]);

    // The VM's history outlives it, and every change leads back to the workflow run that made it.
    const history = (await h.api.nodes.events({ id: vm.id, limit: 100 })).items;
    // One workflow served it all: create and decommission are operations within it.
    const createdBy = `${operation.id}/${operation.runId}`;
    expect(teardown).toMatchObject({ id: 'vm:web-1', updateId: 'decommission' });
    expect(history.map((e) => e.action)).toContain('create');
    expect(history.map((e) => e.action)).toContain('delete');
    for (const e of history) {
      expect(e.actor).toBe('worker');
      expect(e.operation).toBe(createdBy);
    }

    const again = await h.api.vms.create({
      name: 'web-2',
      vcpus: 1,
      memoryMiB: 512,
      nics: [{ network: 'default', ip: '10.0.0.5' }],
    });
    expect(again.vm.keys).toContain('ip:10.0.0.5');
    expect(await settle(h, again.operation)).toMatchObject({ status: 'completed' });
  });
});

describe('registering a host', () => {
  it('refuses a simulated host whose file is not there, and records nothing', async () => {
    // Refused as a file vagoth did not write, as one outside the allowed directories is: the
    // answer says nothing of which files exist.
    const uri = `test://${tmpdir()}/vagoth-nonexistent/ghost.xml`;
    const err = await h.api.hosts
      .register({ name: 'ghost', driver: 'libvirt', uri })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BAD_REQUEST' });
    expect((err as Error).message).toContain('uri: a simulated host is a file vagoth wrote');
    await expect(h.api.hosts.get({ name: 'ghost' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('treats the same registration twice as one, and another host under a taken name as a conflict', async () => {
    const uri = await h.simulatedHost('twice');
    const first = await h.api.hosts.register({ name: 'twice', driver: 'libvirt', uri });
    expect(await h.api.hosts.register({ name: 'twice', driver: 'libvirt', uri })).toEqual(first);
    const other = await h.simulatedHost('elsewhere');
    await expect(
      h.api.hosts.register({ name: 'twice', driver: 'libvirt', uri: other }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      message: 'name:twice is already held by host twice',
    });
  });
});
