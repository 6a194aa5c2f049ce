import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVmActivities } from '../../activities/vm.ts';
import type { OperationRef, StepStates, Transition, VmState } from '../../common/messages.ts';
import { claimVm } from '../../registry/claim-vm.ts';
import { StateConflictError } from '../../registry/errors.ts';
import { getVm } from '../../registry/vms.ts';
import { startHarness, type Harness } from '../support/harness.ts';

// A VM step run twice at once, or run again late (a local activity re-run after its workflow
// task was retried, or after a worker crash), against the real registry: a step may answer
// success only for a state change it made, or found made, or that its operation has carried
// further since.

let h: Harness;
let steps: ReturnType<typeof createVmActivities>;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({
    name: 'hv',
    driver: 'libvirt',
    uri: await h.simulatedHost('hv', { cpus: 64, memoryMiB: 65536 }),
  });
  steps = createVmActivities({
    sql: h.sql,
    drivers: h.worker.drivers,
    defaultPolicy: 'spread',
    actor: () => ({ actor: 'worker', operation: null }),
  });
});
afterAll(async () => {
  await h?.close();
});

const t = (from: VmState[], to: VmState, operation: OperationRef): Transition => ({
  from,
  to,
  operation,
  error: null,
});

/** A VM claimed and placed by a create `operation`, as the create's first step leaves it. */
async function placed(name: string) {
  const operation: OperationRef = {
    kind: 'create',
    workflowId: `vm:${name}`,
    runId: randomUUID(),
    updateId: 'create',
  };
  const vm = await claimVm(
    h.sql,
    {
      name,
      vcpus: 1,
      memoryMiB: 64,
      diskGiB: 0,
      nics: [],
      tags: {},
      placement: {},
    },
    operation,
  );
  await steps.allocateVm(vm, t(['pending'], 'placing', operation));
  const define: StepStates = { enter: t(['placing', 'provisioning'], 'defining', operation) };
  const boot: StepStates = {
    enter: t(['defining'], 'starting', operation),
    done: t(['starting'], 'running', operation),
  };
  return { id: vm.id, operation, define, boot };
}

const states = async (name: string) =>
  (
    await h.sql<{ state: string }[]>`
      SELECT changes->'metadata'->'after'->>'state' AS state FROM node_events
      WHERE node_name = ${name} AND changes->'metadata'->'after' ? 'state' ORDER BY id`
  ).map((r) => r.state);

describe("the create's define-and-boot step", () => {
  it('run twice at once: both answer running, and the registry says so', async () => {
    for (let i = 0; i < 10; i++) {
      const name = `twice-${i}`;
      const { id, define, boot } = await placed(name);
      const runs = await Promise.all([
        steps.defineDomain(id, define, boot),
        steps.defineDomain(id, define, boot),
      ]);
      expect(runs).toEqual([true, true]);
      expect((await getVm(h.sql, name)).state).toBe('running');
      expect(await states(name)).toEqual(['pending', 'placing', 'defining', 'starting', 'running']);
    }
  });

  it('run again after the create went further: answers running and changes nothing', async () => {
    const { id, define, boot } = await placed('again');
    expect(await steps.defineDomain(id, define, boot)).toBe(true);
    const before = await states('again');
    expect(await steps.defineDomain(id, define, boot)).toBe(true);
    expect((await getVm(h.sql, 'again')).state).toBe('running');
    expect(await states('again')).toEqual(before);
  });

  // The bench's VMs left `defining` while their workflow had the step answer `true`: the boot
  // half's compare-and-sets matched no row, and the VM being the same operation's was taken
  // as "already went further". Here the boot half runs while the VM is short of `defining`
  // (its define not landed): it must not answer that the VM runs.
  it('booting a VM short of its `from` is refused, not answered as done', async () => {
    const { id, define, boot } = await placed('short');
    // The domain is on its host; the registry's `defining` has not landed.
    expect(await steps.defineDomain(id)).toBe(false);
    await expect(steps.startDomain(id, boot)).rejects.toBeInstanceOf(StateConflictError);
    expect((await getVm(h.sql, 'short')).state).toBe('placing');
    expect(await states('short')).toEqual(['pending', 'placing']);
    // Once the define has landed, the same step (retried) boots it.
    expect(await steps.defineDomain(id, define)).toBe(false);
    expect(await steps.startDomain(id, boot)).toBe(true);
    expect((await getVm(h.sql, 'short')).state).toBe('running');
  });

  it("a step's `done` when its `enter` never landed is refused", async () => {
    const { id, operation } = await placed('no-enter');
    await steps.defineDomain(id, { enter: t(['placing'], 'defining', operation) });
    // running from starting, while the VM is still `defining`: nothing started it.
    await expect(
      steps.transitionVm(id, ['starting'], 'running', { operation }),
    ).rejects.toBeInstanceOf(StateConflictError);
    expect((await getVm(h.sql, 'no-enter')).state).toBe('defining');
  });
});
