import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attributeKey,
  SEARCH_ATTRIBUTE_NAMES,
  type Attributes,
} from '../../common/search-attributes.ts';
import { hostWorkflowId, vmWorkflowId } from '../../common/vocabulary.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';

// What an operator finds of a VM in the Temporal UI, read through the Temporal client as the UI
// reads it: the search attributes its list filters by, the run's current details, and each
// step's summary in the history.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({
    name: 'win-big',
    driver: 'libvirt',
    uri: await h.simulatedHost('win-big', { cpus: 4, memoryMiB: 4096 }),
  });
});
afterAll(async () => {
  await h?.close();
});

async function attributes(name: string, id = vmWorkflowId(name)): Promise<Attributes> {
  const described = await h.temporal.workflow.getHandle(id).describe();
  const found: Attributes = {};
  for (const n of SEARCH_ATTRIBUTE_NAMES) {
    const value = described.typedSearchAttributes.get(attributeKey(n));
    if (value !== undefined) found[n] = value;
  }
  return found;
}

async function details(name: string, id = vmWorkflowId(name)): Promise<string> {
  const metadata = await h.temporal.workflow
    .getHandle(id)
    .query<temporal.api.sdk.v1.IWorkflowMetadata>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

/** The summaries of the run's steps, in history order. */
async function summaries(name: string): Promise<string[]> {
  const history = await h.temporal.workflow.getHandle(vmWorkflowId(name)).fetchHistory();
  const converter = h.temporal.options.loadedDataConverter.payloadConverter;
  return (history.events ?? []).flatMap((e) => {
    const payload = e.userMetadata?.summary;
    return payload ? [converter.fromPayload<string>(payload)] : [];
  });
}

/** The names of VM workflows the list's filter `query` finds, once visibility has caught up. */
async function listed(query: string, expected: string[]): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found: string[] = [];
    for await (const w of h.temporal.workflow.list({ query })) found.push(w.workflowId);
    const names = found.map((id) => id.replace(/^vm:/, '')).sort();
    if (JSON.stringify(names) === JSON.stringify(expected) || Date.now() > deadline) return names;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the Temporal UI shows each VM as an operator needs it', () => {
  it('a successful create: running on its host, create completed, each step summarised', async () => {
    const { operation } = await h.api.vms.create({
      name: 'win-ok',
      vcpus: 1,
      memoryMiB: 512,
      nics: [{ network: 'default' }],
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const { host } = await h.api.vms.get({ name: 'win-ok' });
    expect(host).toBe('win-big');
    expect(await attributes('win-ok')).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'running',
      VagothHost: host,
      VagothOperation: 'create',
      VagothOperationStatus: 'completed',
    });
    const text = await details('win-ok');
    expect(text).toContain(`VM \`win-ok\` is \`running\` on host \`${host}\``);
    expect(text).toContain('Last operation: `create`, completed');
    const steps = await summaries('win-ok');
    expect(steps).toContain('place win-ok');
    expect(steps).toContain(`define win-ok on ${host}`);
  });

  it('a failed create kept as failed: findable by the failed filter, with its reason and how to retry', async () => {
    const { operation } = await h.api.vms.create({
      name: 'win-full',
      vcpus: 1,
      memoryMiB: 900_000,
      nics: [{ network: 'default' }],
      onFailure: 'keep',
    });
    const done = await settle(h, operation);
    expect(done.status).toBe('failed');
    expect(await attributes('win-full')).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'failed',
      VagothOperation: 'create',
      VagothOperationStatus: 'failed',
      VagothFailure: 'NoCapacity',
    });
    const text = await details('win-full');
    expect(text).toContain('Last operation `create` failed (NoCapacity)');
    expect(text).toContain(done.error!.message);
    expect(text).toContain('To retry:');
    const failed = await listed(
      `VagothOperationStatus = "failed" AND VagothKind = "vm" AND WorkflowId STARTS_WITH "vm:win-"`,
      ['win-full'],
    );
    expect(failed).toEqual(['win-full']);
  });

  it('a failed migrate: failed with its type, the VM still running where it was, the retry input shown', async () => {
    // A host too small for it: the move is refused once it asks for room there.
    await h.api.hosts.register({
      name: 'win-tiny',
      driver: 'libvirt',
      uri: await h.simulatedHost('win-tiny', { cpus: 1, memoryMiB: 256 }),
    });
    const { operation } = await h.api.vms.migrate({ name: 'win-ok', host: 'win-tiny' });
    const done = await settle(h, operation);
    expect(done.status).toBe('failed');
    expect(await attributes('win-ok')).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'running',
      VagothHost: 'win-big',
      VagothOperation: 'migrate',
      VagothOperationStatus: 'failed',
      VagothFailure: done.error!.type,
    });
    const text = await details('win-ok');
    expect(text).toContain('Last operation `migrate` failed');
    expect(text).toContain('send the Update `retry` with no input');
    expect(text).toContain('runs `migrate` again with input `[{"host":"win-tiny"}]`');
    // The retry runs that very move again, to the host it named: refused there once more.
    const again = await h.api.operations.retry({ name: 'win-ok' });
    expect(await settle(h, again.operation)).toMatchObject({
      kind: 'migrate',
      status: 'failed',
      error: { type: done.error!.type },
    });
    expect(
      await listed(`VagothOperation = "migrate" AND VagothOperationStatus = "failed"`, ['win-ok']),
    ).toEqual(['win-ok']);
  });

  it('a decommission: gone, decommission completed, no host', async () => {
    const { operation } = await h.api.vms.decommission({ name: 'win-ok' });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await attributes('win-ok')).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'gone',
      VagothOperation: 'decommission',
      VagothOperationStatus: 'completed',
    });
    expect(
      await listed(`VagothVmState = "gone" AND WorkflowId STARTS_WITH "vm:win-"`, ['win-ok']),
    ).toEqual(['win-ok']);
  });

  it('a retry runs the last failed operation again: refused while nothing failed or the room is still taken, then it boots', async () => {
    // win-big (4096 MiB) is empty again; a hog takes most of it, so the next create fails.
    const hog = await h.api.vms.create({ name: 'win-hog', vcpus: 1, memoryMiB: 3500, nics: [] });
    expect(await settle(h, hog.operation)).toMatchObject({ status: 'completed' });
    const retried = await refusal(h.api.operations.retry({ name: 'win-hog' }));
    expect(retried.code).toBe('PRECONDITION_FAILED');
    expect(retried.message).toContain(
      "win-hog's last operation, create, completed: nothing to retry",
    );

    const late = await h.api.vms.create({
      name: 'win-late',
      vcpus: 1,
      memoryMiB: 1024,
      nics: [{ network: 'default' }],
      onFailure: 'keep',
    });
    expect(await settle(h, late.operation)).toMatchObject({ status: 'failed' });
    expect(await details('win-late')).toContain('send the Update `retry` with no input');

    // Still no room: the retry runs, and fails again for the same reason.
    const again = await h.api.operations.retry({ name: 'win-late' });
    const second = await settle(h, again.operation);
    expect(second).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
    expect((await h.api.vms.get({ name: 'win-late' })).state).toBe('failed');

    // Room made: the retry places and boots it, with the request it was created with.
    const gone = await h.api.vms.decommission({ name: 'win-hog' });
    expect(await settle(h, gone.operation)).toMatchObject({ status: 'completed' });
    const third = await h.api.operations.retry({ name: 'win-late' });
    expect(await settle(h, third.operation)).toMatchObject({ status: 'completed' });
    const vm = await h.api.vms.get({ name: 'win-late' });
    expect(vm).toMatchObject({ state: 'running', host: 'win-big' });
    expect(await attributes('win-late')).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'running',
      VagothHost: 'win-big',
      VagothOperation: 'create',
      VagothOperationStatus: 'completed',
    });
    // Its addresses were kept all along: the same NIC, no second claim.
    const keys = await h.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM node_keys k JOIN nodes n ON n.id = k.node_id
      WHERE n.name = 'win-late' AND k.key LIKE 'ip:%'`;
    expect(keys[0]!.n).toBe(1);

    // Nothing failed since: a retry is refused, and it leaves nothing queued.
    expect((await refusal(h.api.operations.retry({ name: 'win-late' }))).code).toBe(
      'PRECONDITION_FAILED',
    );
    const done = await h.api.vms.decommission({ name: 'win-late' });
    expect(await settle(h, done.operation)).toMatchObject({ status: 'completed' });
  });
});

describe('the Temporal UI shows each host as an operator needs it', () => {
  it("its latest operation with status, a refusal's reason, and the next operation clearing it", async () => {
    await h.api.hosts.register({
      name: 'win-host',
      driver: 'libvirt',
      uri: await h.simulatedHost('win-host', { cpus: 2, memoryMiB: 2048 }),
    });
    const id = hostWorkflowId('win-host');
    const shown = (operation: string, status: string, failure?: string) => ({
      VagothKind: 'host',
      VagothHost: 'win-host',
      VagothOperation: operation,
      VagothOperationStatus: status,
      ...(failure ? { VagothFailure: failure } : {}),
    });
    await h.api.hosts.maintenance({ name: 'win-host' });
    expect(await attributes('win-host', id)).toEqual(shown('maintenance', 'completed'));
    expect(await details('win-host', id)).toMatch(/win-host.*maintenance completed/);

    // A host in maintenance that still answers is not evacuated: the run says why.
    const evacuation = h.api.hosts.evacuate({ name: 'win-host', fenced: true });
    expect((await refusal(evacuation)).code).toBe('PRECONDITION_FAILED');
    expect(await attributes('win-host', id)).toEqual(shown('evacuate', 'failed', 'StateConflict'));
    expect(await details('win-host', id)).toMatch(/evacuate failed[^]*Failed: .*answering/);
    expect(
      await listed('VagothKind = "host" AND VagothOperationStatus = "failed"', ['host:win-host']),
    ).toEqual(['host:win-host']);

    await h.api.hosts.activate({ name: 'win-host' });
    expect(await attributes('win-host', id)).toEqual(shown('activate', 'completed'));
    expect(await details('win-host', id)).not.toMatch(/Failed/);
  });
});
