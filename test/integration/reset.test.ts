import { randomUUID } from 'node:crypto';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmWorkflowId } from '../../common/vocabulary.ts';
import { statusQuery, type OperationRecord } from '../../workflows/vm-entity.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

// What a Temporal Reset does to a VM's entity workflow, as an operator would do it from the UI:
// a run reset to before changes the registry has since recorded acts on nothing, and says why;
// a run reset to its latest workflow task goes on as before (README, "In the Temporal UI").

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({
    name: 'rst-host',
    driver: 'libvirt',
    uri: await h.simulatedHost('rst-host', { cpus: 4, memoryMiB: 4096 }),
  });
});
afterAll(async () => {
  await h?.close();
});

/**
 * The run's last completed workflow task (or the `nth`), once it has no task in flight (a
 * create's steps run inside its tasks): the point the UI's Reset offers first.
 */
async function latestTask(name: string, runId?: string, nth = -1) {
  const handle = h.temporal.workflow.getHandle(vmWorkflowId(name), runId);
  let described = await handle.describe();
  while (described.raw.pendingWorkflowTask || described.raw.pendingActivities?.length) {
    await new Promise((r) => setTimeout(r, 100));
    described = await handle.describe();
  }
  const run = runId ?? described.runId;
  const history = await h.temporal.workflow.getHandle(vmWorkflowId(name), run).fetchHistory();
  const done = (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes);
  return { runId: run, eventId: done.at(nth)!.eventId! };
}

type EventId = NonNullable<temporal.api.history.v1.IHistoryEvent['eventId']>;

async function reset(name: string, at: { runId: string; eventId: EventId }): Promise<string> {
  const { runId } = await h.temporal.workflowService.resetWorkflowExecution({
    namespace: h.namespace,
    workflowExecution: { workflowId: vmWorkflowId(name), runId: at.runId },
    workflowTaskFinishEventId: at.eventId,
    requestId: randomUUID(),
    reason: 'an operator tries Reset',
  });
  return runId!;
}

/** The VM's state as the registry has it and as its host runs it. */
async function where(name: string) {
  const vm = await h.api.vms.get({ name });
  const host = (await h.api.hosts.list()).find((x) => x.name === vm.host)!;
  const info = await h.worker.drivers.get(host).info(name);
  return { registry: vm.state, domain: info?.state ?? null };
}

async function createRunning(name: string): Promise<void> {
  const { operation } = await h.api.vms.create({
    name,
    vcpus: 1,
    memoryMiB: 256,
    nics: [{ network: 'default' }],
  });
  expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
}

/** The run's operations once none is waiting or running. */
async function settled(name: string): Promise<OperationRecord[]> {
  const handle = h.temporal.workflow.getHandle(vmWorkflowId(name));
  for (;;) {
    const status = await handle.query(statusQuery);
    if (status.operation === null && status.queued.length === 0) return status.operations;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function operate(name: string, kind: 'stop' | 'start') {
  const { operation } = await h.api.vms[kind]({ name });
  return settle(h, operation);
}

describe('Reset of a VM workflow', () => {
  it('reset to before a stop and a start: its steps are refused and the VM is left alone', async () => {
    await createRunning('rst-a');
    expect(await operate('rst-a', 'stop')).toMatchObject({ status: 'completed' });
    expect(await operate('rst-a', 'start')).toMatchObject({ status: 'completed' });
    expect(await where('rst-a')).toEqual({ registry: 'running', domain: 'running' });

    // Back to the task after the create's (whose steps, reset to, would claim the VM again):
    // the run believes the VM running, as it was then, and runs the stop and start the
    // history held after that point again (Reset reapplies Updates), then the next stop.
    const created = await latestTask('rst-a', undefined, 1);
    const resetRun = await reset('rst-a', created);
    expect(resetRun).not.toBe(created.runId);

    const [again] = (await settled('rst-a')).filter((o) => o.kind === 'stop');
    expect(again).toMatchObject({ status: 'failed', error: { type: 'ResetRefused' } });
    expect(again!.error!.message).toMatch(/registry state was changed at event \d+ of run/);
    expect(again!.error!.message).toMatch(/Reset is refused/);
    expect(await where('rst-a')).toEqual({ registry: 'running', domain: 'running' });

    // The way out: reset the run it was reset from to that run's latest task.
    await reset('rst-a', await latestTask('rst-a', created.runId));
    expect(await operate('rst-a', 'stop')).toMatchObject({ status: 'completed' });
    expect(await where('rst-a')).toEqual({ registry: 'stopped', domain: 'stopped' });
  });

  it('reset to its latest workflow task: the run goes on acting', async () => {
    await createRunning('rst-b');
    expect(await operate('rst-b', 'stop')).toMatchObject({ status: 'completed' });
    await reset('rst-b', await latestTask('rst-b'));
    expect(await operate('rst-b', 'start')).toMatchObject({ status: 'completed' });
    expect(await where('rst-b')).toEqual({ registry: 'running', domain: 'running' });
    const { operation: gone } = await h.api.vms.decommission({ name: 'rst-b' });
    expect(await settle(h, gone)).toMatchObject({ status: 'completed' });
  });

  it('a reset run begun before its VM was claimed claims nothing', async () => {
    await createRunning('rst-c');
    const { operation: gone } = await h.api.vms.decommission({ name: 'rst-c' });
    expect(await settle(h, gone)).toMatchObject({ status: 'completed' });
    const handle = h.temporal.workflow.getHandle(vmWorkflowId('rst-c'));
    const history = await handle.fetchHistory();
    const first = (history.events ?? []).find((e) => e.workflowTaskCompletedEventAttributes)!;
    const runId = (await handle.describe()).runId;
    // The first task: before the claim. Its reset run's create must not claim the name again.
    await reset('rst-c', { runId, eventId: first.eventId! });
    const ended = await h.temporal.workflow
      .getHandle(vmWorkflowId('rst-c'))
      .result()
      .catch((err: Error) => err);
    expect(String(((ended as Error).cause as Error | undefined)?.message)).toMatch(
      /reset to before its VM was claimed/,
    );
    await expect(h.api.vms.get({ name: 'rst-c' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
