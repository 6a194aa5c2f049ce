import { WithStartWorkflowOperation } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmRequest } from '../../registry/vms.ts';
import { claimedUpdate, statusQuery, vmEntity } from '../../workflows/index.ts';
import { revisionMemo } from '../../workflows/revisions.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({ name: 'hv', driver: 'libvirt', uri: await h.simulatedHost('hv') });
});
afterAll(async () => {
  await h?.close();
});

describe('a VM workflow that continues as new', () => {
  it('keeps serving the same VM, with its state and recent operations carried over', async () => {
    const request: VmRequest = {
      name: 'long-lived',
      vcpus: 1,
      memoryMiB: 256,
      diskGiB: 0,
      nics: [],
      tags: {},
      placement: {},
    };
    const workflowId = 'vm:long-lived';
    // As vms.create starts it, but told to continue after two operations instead of waiting
    // for the server to suggest it (thousands of events).
    const vm = await h.temporal.workflow.executeUpdateWithStart(claimedUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation(vmEntity, {
        args: [{ request, continueAfter: 2 }],
        taskQueue: h.taskQueue,
        workflowId,
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });
    const firstRun = vm.operation!.runId;
    await settle(h, { id: workflowId, runId: firstRun, updateId: 'create' });
    const stop = await h.api.vms.stop({ name: 'long-lived' });
    expect(await settle(h, stop.operation)).toMatchObject({ status: 'completed' });

    // Create and stop make two: the first run hands over to a new one.
    const handle = h.temporal.workflow.getHandle(workflowId);
    await expect
      .poll(async () => (await handle.describe()).runId, { timeout: 30_000 })
      .not.toBe(firstRun);
    expect((await h.temporal.workflow.getHandle(workflowId, firstRun).describe()).status.name).toBe(
      'CONTINUED_AS_NEW',
    );

    // The new run knows the VM is stopped, and what was done to it before.
    const status = await handle.query(statusQuery);
    expect(status).toMatchObject({ name: 'long-lived', state: 'stopped', host: 'hv' });
    expect(status.operations.map((o) => o.kind)).toEqual(['create', 'stop']);
    // ... and serves the next operation on the same VM.
    const start = await h.api.vms.start({ name: 'long-lived' });
    expect(start.operation.runId).not.toBe(firstRun);
    expect(await settle(h, start.operation)).toMatchObject({ status: 'completed' });
    expect(await h.api.vms.get({ name: 'long-lived' })).toMatchObject({
      state: 'running',
      host: 'hv',
    });
    const gone = await h.api.vms.decommission({ name: 'long-lived' });
    expect(await settle(h, gone.operation)).toMatchObject({ status: 'completed' });

    // The first run began with no revision in its memo (as runs begun before there was one):
    // its create went by a patch marker. The run it continued into is pinned to the newest
    // revision, and its decommission took that path with no marker.
    const patchMarkers = async (runId: string) =>
      ((await h.temporal.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? []).filter(
        (e) => e.markerRecordedEventAttributes?.markerName === 'core_patch',
      ).length;
    expect(await patchMarkers(firstRun)).toBe(1);
    const second = await handle.describe();
    expect(second.memo).toEqual(revisionMemo());
    expect(await patchMarkers(second.runId)).toBe(0);
  });
});
