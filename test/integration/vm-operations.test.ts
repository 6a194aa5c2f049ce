import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections } from '../../drivers/libvirt/connections.ts';
import { statusQuery } from '../../workflows/index.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { volumeNames } from '../support/libvirt-hosts.ts';
import { refusal } from '../support/refusal.ts';

let h: Harness;
const HOSTS = ['hv1', 'hv2', 'hv3'];
const uris: Record<string, string> = {};

beforeAll(async () => {
  h = await startHarness();
  for (const name of HOSTS) {
    uris[name] = await h.simulatedHost(name, { cpus: 8, memoryMiB: 8192 });
    await h.api.hosts.register({ name, driver: 'libvirt', uri: uris[name]!, diskGiB: 100 });
  }
});
afterAll(async () => {
  await h?.close();
});

/** Every domain on every host, as the simulated hypervisors report them. */
async function domains() {
  const found: Array<{ host: string; name: string; state: string }> = [];
  for (const name of HOSTS) {
    const status = await h.worker.drivers.get(await h.api.hosts.get({ name })).status();
    for (const d of status.domains) found.push({ host: name, name: d.name, state: d.state });
  }
  return found;
}

/** The volumes in each host's `vagoth` pool (the worker's own connection: same simulated host). */
async function volumes() {
  const found: Record<string, string[]> = {};
  for (const name of HOSTS) {
    const lease = connections.lease(uris[name]!);
    try {
      found[name] = await volumeNames(await lease.get(), 'vagoth');
    } finally {
      await lease.release();
    }
  }
  return found;
}

async function allocated() {
  return Object.fromEntries((await h.api.hosts.list()).map((x) => [x.name, x.allocated.memoryMiB]));
}

async function done(call: Promise<{ operation: Parameters<typeof settle>[1] }>) {
  const { operation } = await call;
  const outcome = await settle(h, operation);
  expect(outcome).toMatchObject({ status: 'completed', error: null });
  return operation;
}

async function create(name: string, extra: object = {}) {
  const { vm, operation } = await h.api.vms.create({
    name,
    vcpus: 1,
    memoryMiB: 1024,
    diskGiB: 10,
    nics: [{ network: 'default' }],
    ...extra,
  });
  return { vm, operation, outcome: await settle(h, operation) };
}

describe('a VM through every operation', () => {
  it('creates, stops, starts, reboots, shuts down, migrates, reprovisions and decommissions', async () => {
    const { vm, outcome } = await create('life-1');
    expect(outcome).toMatchObject({ status: 'completed', kind: 'create' });
    const created = await h.api.vms.get({ name: 'life-1' });
    expect(created.state).toBe('running');
    // The volume is claimed as the VM's key and exists on its host only.
    const volumeKeys = created.keys.filter((k) => k.startsWith('vol:'));
    expect(volumeKeys).toHaveLength(1);
    const volume = volumeKeys[0]!.split('/')[1]!;
    expect(Object.entries(await volumes()).filter(([, v]) => v.includes(volume))).toEqual([
      [created.host, [volume]],
    ]);

    await done(h.api.vms.stop({ name: 'life-1' }));
    expect(await h.api.vms.get({ name: 'life-1' })).toMatchObject({ state: 'stopped' });
    expect(await domains()).toEqual([{ host: created.host, name: 'life-1', state: 'stopped' }]);
    // Stopping a stopped VM is accepted and changes nothing.
    await done(h.api.vms.stop({ name: 'life-1' }));

    await done(h.api.vms.start({ name: 'life-1' }));
    expect(await domains()).toEqual([{ host: created.host, name: 'life-1', state: 'running' }]);
    await done(h.api.vms.reboot({ name: 'life-1' }));
    expect(await h.api.vms.get({ name: 'life-1' })).toMatchObject({ state: 'running' });

    await done(h.api.vms.shutdown({ name: 'life-1', timeoutMs: 5000, force: true }));
    expect(await domains()).toEqual([{ host: created.host, name: 'life-1', state: 'stopped' }]);
    await done(h.api.vms.start({ name: 'life-1' }));

    // Migrate to a named host: runs there only, its room and volume moved with it.
    const target = HOSTS.find((x) => x !== created.host)!;
    const moved = await done(h.api.vms.migrate({ name: 'life-1', host: target }));
    expect(moved).toMatchObject({ id: 'vm:life-1', kind: 'migrate' });
    // Asked live (the default); the test driver cannot, so it went cold, and says so.
    const { id, runId, updateId } = moved;
    expect(await h.api.operations.get({ id, runId, updateId })).toMatchObject({
      status: 'completed',
      note: expect.stringMatching(/^not live: the hosts cannot migrate live/),
    });
    expect(await h.api.vms.get({ name: 'life-1' })).toMatchObject({
      state: 'running',
      host: target,
    });
    expect(await domains()).toEqual([{ host: target, name: 'life-1', state: 'running' }]);
    expect((await allocated())[target]).toBe(1024);
    expect((await allocated())[created.host!]).toBe(0);
    expect(Object.entries(await volumes()).filter(([, v]) => v.includes(volume))).toEqual([
      [target, [volume]],
    ]);

    // Migrate where the allocator says: anywhere but here.
    await done(h.api.vms.migrate({ name: 'life-1' }));
    const picked = (await h.api.vms.get({ name: 'life-1' })).host!;
    expect(picked).not.toBe(target);
    expect(await domains()).toEqual([{ host: picked, name: 'life-1', state: 'running' }]);
    expect(Object.values(await allocated()).reduce((a, b) => a + b, 0)).toBe(1024);
    expect((await allocated())[picked]).toBe(1024);
    // No hold on a target is left behind.
    expect(await h.sql`SELECT name FROM nodes WHERE type = 'vm-migration'`).toEqual([]);

    await done(h.api.vms.reprovision({ name: 'life-1' }));
    const again = await h.api.vms.get({ name: 'life-1' });
    // The same keys (name, addresses, volumes), the volumes' now naming the host they are on.
    const onPicked = created.keys.map((k) => k.replace(`vol:${created.host}:`, `vol:${picked}:`));
    expect(again).toMatchObject({ state: 'running', host: picked });
    expect([...again.keys].sort()).toEqual([...onPicked].sort());
    expect(await domains()).toEqual([{ host: picked, name: 'life-1', state: 'running' }]);

    const gone = await done(h.api.vms.decommission({ name: 'life-1' }));
    expect(gone).toMatchObject({ id: 'vm:life-1', updateId: 'decommission' });
    await expect(h.api.vms.get({ name: 'life-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await domains()).toEqual([]);
    expect(await allocated()).toEqual({ hv1: 0, hv2: 0, hv3: 0 });
    expect(Object.values(await volumes()).flat()).toEqual([]);
    for (const key of created.keys) {
      await expect(h.api.nodes.get({ key })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    }
    // The entity workflow ended with its VM.
    const described = await h.temporal.workflow.getHandle('vm:life-1').describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(vm.id).toBeTruthy();
    // An operation on the VM now gone, or on one never created, is NOT_FOUND by its name.
    for (const name of ['life-1', 'never-1']) {
      expect(await refusal(h.api.vms.start({ name }))).toMatchObject({
        code: 'NOT_FOUND',
        message: `vm "${name}" not found`,
      });
    }
  });
});

/** Update events in the workflow's history: a rejected request must add none. */
async function updateEvents(workflowId: string) {
  const history = await h.temporal.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
    .length;
}

describe('validators', () => {
  it('reject an operation the VM state does not allow, with the reason, before history', async () => {
    await create('val-1');
    await done(h.api.vms.stop({ name: 'val-1' }));
    const before = await updateEvents('vm:val-1');

    const reboot = await refusal(h.api.vms.reboot({ name: 'val-1' }));
    expect(reboot.code).toBe('PRECONDITION_FAILED');
    expect(reboot.message).toBe('vm val-1 is stopped; start it instead');
    const here = (await h.api.vms.get({ name: 'val-1' })).host!;
    const migrate = await refusal(h.api.vms.migrate({ name: 'val-1', host: here }));
    expect(migrate).toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: `vm val-1 already runs on ${here}`,
    });
    expect(await updateEvents('vm:val-1')).toBe(before);

    // Once a decommission is accepted, nothing else is.
    const { operation } = await h.api.vms.decommission({ name: 'val-1' });
    const start = await refusal(h.api.vms.start({ name: 'val-1' }));
    expect(start.code).toMatch(/PRECONDITION_FAILED|NOT_FOUND/);
    if (start.code === 'PRECONDITION_FAILED') {
      expect(start.message).toBe('vm val-1 is being decommissioned or is gone');
    }
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
  });
});

describe('concurrent operations on one VM', () => {
  it('run one at a time in arrival order, or are refused; never interleaved', async () => {
    const { vm } = await create('busy-1');
    const calls = [
      h.api.vms.stop({ name: 'busy-1' }),
      h.api.vms.start({ name: 'busy-1' }),
      h.api.vms.decommission({ name: 'busy-1' }),
    ];
    const results = await Promise.allSettled(calls);
    const accepted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.operation] : []));
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'PRECONDITION_FAILED' });
    }
    expect(accepted.map((o) => o.kind)).toContain('decommission');
    for (const op of accepted) expect(await settle(h, op)).toMatchObject({ status: 'completed' });

    // The registry's log: each state change names its operation; once another operation has
    // changed the VM, an earlier one never does again.
    const events = (await h.api.nodes.events({ id: vm.id, limit: 100 })).items.reverse();
    const order: string[] = [];
    for (const e of events) {
      const after = e.changes.metadata?.after as { operation?: { updateId?: string } } | undefined;
      const id = after?.operation?.updateId;
      if (id === undefined || order.at(-1) === id) continue;
      expect(order).not.toContain(id);
      order.push(id);
    }
    const ids = accepted.map((o) => o.updateId);
    expect(order.filter((id) => id !== 'create')).toEqual(ids.filter((id) => order.includes(id!)));
    await expect(h.api.vms.get({ name: 'busy-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('the states a create records', () => {
  /** The VM's states as its registry log recorded them, oldest first. */
  async function states(id: string): Promise<string[]> {
    const events = (await h.api.nodes.events({ id, limit: 100 })).items.reverse();
    return events.flatMap((e) => {
      const after = e.changes.metadata?.after as { state?: string } | undefined;
      return after?.state === undefined ? [] : [after.state];
    });
  }

  it('passes through provisioning only for a VM with volumes', async () => {
    const withDisk = await create('states-disk');
    const diskless = await create('states-nodisk', { diskGiB: 0 });
    expect(withDisk.outcome).toMatchObject({ status: 'completed' });
    expect(diskless.outcome).toMatchObject({ status: 'completed' });
    expect(await states(withDisk.vm.id)).toEqual([
      'pending',
      'placing',
      'provisioning',
      'defining',
      'starting',
      'running',
    ]);
    expect(await states(diskless.vm.id)).toEqual([
      'pending',
      'placing',
      'defining',
      'starting',
      'running',
    ]);
    expect(
      (await h.api.vms.get({ name: 'states-disk' })).keys.some((k) => k.startsWith('vol:')),
    ).toBe(true);
    expect(
      (await h.api.vms.get({ name: 'states-nodisk' })).keys.some((k) => k.startsWith('vol:')),
    ).toBe(false);
  });
});

describe('a create that fails', () => {
  it('ends failed with the reason when asked to keep the VM, holding no room', async () => {
    const { vm, operation, outcome } = await create('keep-1', {
      memoryMiB: 65536,
      onFailure: 'keep',
    });
    expect(outcome).toMatchObject({ status: 'failed', kind: 'create' });
    expect(outcome.error?.type).toBe('NoCapacity');
    const kept = await h.api.vms.get({ name: 'keep-1' });
    expect(kept).toMatchObject({ state: 'failed', host: null });
    expect(kept.error).toContain('create keep-1 failed while placing');
    expect(kept.keys).toEqual(vm.keys);
    expect(await h.sql`SELECT 1 FROM allocations WHERE vm_id = ${vm.id}`).toEqual([]);
    const status = await h.temporal.workflow.getHandle(operation.id).query(statusQuery);
    expect(status).toMatchObject({ state: 'failed' });

    const start = await refusal(h.api.vms.start({ name: 'keep-1' }));
    expect(start).toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: 'vm keep-1 failed; only decommission is possible',
    });
    await done(h.api.vms.decommission({ name: 'keep-1' }));
    await expect(h.api.vms.get({ name: 'keep-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('removes the VM by default', async () => {
    const { outcome } = await create('gone-1', { memoryMiB: 65536 });
    expect(outcome).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    await expect(h.api.vms.get({ name: 'gone-1' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
