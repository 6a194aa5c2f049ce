import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  currentUpdateInfo,
  defineQuery,
  defineUpdate,
  makeContinueAsNewFunc,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  EntityState,
  EvacuateRequest,
  MigrateRequest,
  OperationKind,
  OperationOutcome,
  OperationRef,
  ShutdownArgs,
  Vm,
  VmFacts,
  VmRequest,
} from '../common/messages.ts';
import type { FailureType } from '../common/vocabulary.ts';
import { rootFailure } from './failure.ts';
import { revisionMemo, since } from './revisions.ts';
import { locateSubject } from './interceptors.ts';
import { onLeavingTask } from './proxies.ts';
import { createSaga, type Claim, type OnFailure } from './vm-create.ts';
import * as ops from './vm-operations.ts';
import { rejection, retryRejection, targetOf } from './vm-rules.ts';
import { operatorWindow, vmAttributes, vmDetails, watched } from './vm-window.ts';

export interface OperationRecord {
  updateId: string;
  kind: OperationKind;
  runId: string;
  status: 'queued' | 'running' | 'completed' | 'failed';
  /** What the VM will be once this and every operation before it have run. */
  projected: EntityState;
  error: { type: string | null; message: string } | null;
  /** What the caller should know of how it went, when there is something (see OperationOutcome). */
  note?: string;
  /** The Update's input, when it takes one: what a retry sends again. */
  args?: unknown[];
  acceptedAt: string;
  closedAt: string | null;
}

export interface VmStatus {
  name: string;
  vmId: string | null;
  state: EntityState;
  host: string | null;
  error: string | null;
  /** The operation in progress, if any, then those waiting their turn, in arrival order. */
  operation: OperationRecord | null;
  queued: OperationRecord[];
  /** Recent operations, oldest first (the last RECENT, carried across continueAsNew). */
  operations: OperationRecord[];
}

export interface VmEntityInput {
  request: VmRequest;
  /** What a failed create leaves: nothing (`remove`, the default) or the VM `failed`, with why. */
  onFailure?: OnFailure;
  /** For tests of continueAsNew: continue after this many operations, not only when suggested. */
  continueAfter?: number;
  /**
   * Set by continueAsNew: the VM as the last run left it, its recent operations, how many
   * runs came before this one and whether one of them began by a Reset (common/run-position.ts;
   * both absent from runs continued before they were carried).
   */
  carried?: {
    vm: VmFacts;
    claimed: Vm | null;
    operations: OperationRecord[];
    generation?: number;
    resetInChain?: boolean;
  };
}

/** Resolves once the VM's name and keys are claimed, or fails with why they could not be. */
export const claimedUpdate = defineUpdate<Vm, [VmRequest]>('claimed');
export const startUpdate = defineUpdate<OperationOutcome>('start');
export const stopUpdate = defineUpdate<OperationOutcome>('stop');
export const shutdownUpdate = defineUpdate<OperationOutcome, [ShutdownArgs]>('shutdown');
export const rebootUpdate = defineUpdate<OperationOutcome>('reboot');
export const migrateUpdate = defineUpdate<OperationOutcome, [MigrateRequest]>('migrate');
export const reprovisionUpdate = defineUpdate<OperationOutcome>('reprovision');
export const decommissionUpdate = defineUpdate<OperationOutcome>('decommission');
/** Sent by a host's evacuation (workflows/host-evacuate.ts) once the host is fenced. */
export const evacuateUpdate = defineUpdate<OperationOutcome, [EvacuateRequest]>('evacuate');
/**
 * Runs the VM's last operation again, with its input, when it failed: a failed create kept
 * `failed` is placed and booted again. Judged as that operation would be, so a retry the VM's
 * state does not allow is refused with the reason.
 */
export const retryUpdate = defineUpdate<OperationOutcome>('retry');
export const statusQuery = defineQuery<VmStatus>('status');
export const operationQuery = defineQuery<OperationRecord | null, [string]>('operation');

const RECENT = 50;

function rejected(message: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'OperationRejected' satisfies FailureType,
    message,
    nonRetryable: true,
  });
}

/**
 * One long-lived workflow per VM (`vm:<name>`): it runs the create saga, then serves the VM's
 * operations as Updates until it is decommissioned. Updates, not signals, because a caller
 * must learn at once whether its request was accepted: validators reject what the VM's state
 * does not allow before anything reaches history. Accepted operations run one at a time in
 * arrival order (the queue below is the per-VM mutex), so none ever interleave.
 */
export async function vmEntity(input: VmEntityInput): Promise<VmStatus> {
  const { request } = input;
  const onFailure = input.onFailure ?? 'remove';
  const { workflowId, runId } = workflowInfo();
  const records: OperationRecord[] = [...(input.carried?.operations ?? [])];
  const queue: OperationRecord[] = [];
  const view = operatorWindow(
    () => vmAttributes(vm, queue, records),
    () => vmDetails(vm, queue, records),
  );
  // Every change of the VM's state, host or error is shown in the UI (view.changed).
  const vm: VmFacts = watched(
    input.carried?.vm ?? {
      name: request.name,
      vmId: null,
      state: 'pending',
      host: null,
      error: null,
    },
    view.changed,
  );
  const generation = input.carried ? (input.carried.generation ?? 0) + 1 : 0;
  const inherited = input.carried?.resetInChain ?? false;
  locateSubject(() => ({ host: vm.host, vmId: vm.vmId }), { generation, inherited });
  onLeavingTask(view.publish);
  let claim: Claim | undefined;
  if (input.carried) {
    const { claimed } = input.carried;
    claim = claimed ? { vm: claimed } : { failure: rejected(vm.error ?? 'create failed') };
  }
  let finished = 0;

  const ref = (r: OperationRecord): OperationRef => ({
    kind: r.kind,
    workflowId,
    runId: r.runId,
    updateId: r.updateId,
  });
  const projected = (): EntityState => queue.at(-1)?.projected ?? vm.state;

  function accept(kind: OperationKind, updateId: string, args: unknown[] = []): OperationRecord {
    const record: OperationRecord = {
      updateId,
      kind,
      runId,
      status: 'queued',
      projected: targetOf(kind, projected()),
      error: null,
      // Workflow time: deterministic on replay.
      acceptedAt: new Date().toISOString(),
      closedAt: null,
      ...(args.length > 0 && args.some((a) => a !== undefined) ? { args } : {}),
    };
    view.changed();
    queue.push(record);
    records.push(record);
    if (records.length > RECENT) records.splice(0, records.length - RECENT);
    return record;
  }

  async function inTurn(
    record: OperationRecord,
    fn: (op: OperationRef) => Promise<string | undefined | void>,
  ) {
    // The history's length names the workflow task: the same at the turn as at acceptance
    // means the acceptance is not yet durable, and no step may run before it is.
    const acceptedIn = workflowInfo().historyLength;
    await condition(() => queue[0] === record);
    if (
      record !== create &&
      workflowInfo().historyLength === acceptedIn &&
      since('act-after-acceptance')
    ) {
      await sleep(1);
    }
    // Old path (no timer): goes once no run begun before `act-after-acceptance` is open
    // (revisions.ts).
    record.status = 'running';
    view.changed();
    try {
      const note = await fn(ref(record));
      if (typeof note === 'string') record.note = note;
      record.status = 'completed';
    } catch (err) {
      const failure = rootFailure(err);
      record.status = 'failed';
      record.error = { type: failure.type ?? null, message: failure.message };
      throw failure;
    } finally {
      record.closedAt = new Date().toISOString();
      queue.shift();
      finished++;
      view.publish();
    }
  }

  type Step = (op: OperationRef, ...args: unknown[]) => Promise<string | undefined | void>;
  type Check = (...args: unknown[]) => Parameters<typeof rejection>[4];
  /** Each operation's step and its input's check, by kind: what `retry` runs again. */
  const served = new Map<OperationKind, { fn: Step; check: Check }>();

  /** Accepts the operation, runs it in its turn, and answers how it went. */
  async function run(kind: OperationKind, args: unknown[], fn: Step) {
    const record = accept(kind, currentUpdateInfo()?.id ?? kind, args);
    await inTurn(record, (op) => fn(op, ...args));
    const note = record.note === undefined ? {} : { note: record.note };
    return { operation: ref(record), state: vm.state, host: vm.host, ...note };
  }

  function serve<A extends unknown[]>(
    update: ReturnType<typeof defineUpdate<OperationOutcome, A>>,
    kind: OperationKind,
    fn: (op: OperationRef, ...args: A) => Promise<string | undefined | void>,
    check: (...args: A) => Parameters<typeof rejection>[4] = () => ({}),
  ) {
    served.set(kind, { fn: fn as Step, check: check as Check });
    setHandler(update, (...args: A) => run(kind, args, fn as Step), {
      validator: (...args: A) => {
        const why = rejection(vm.name, kind, projected(), vm.host, check(...args));
        if (why !== null) throw rejected(why);
      },
    });
  }

  // Before the first await: an update-with-start's update finds its handler.
  const create = input.carried ? null : accept('create', 'create');
  setHandler(statusQuery, () => ({
    ...vm,
    operation: queue[0]?.status === 'running' ? queue[0] : null,
    queued: queue.filter((r) => r.status === 'queued'),
    operations: records,
  }));
  setHandler(operationQuery, (id) => records.find((r) => r.updateId === id) ?? null);
  setHandler(
    claimedUpdate,
    async () => {
      await condition(() => claim !== undefined);
      if (claim && 'failure' in claim) throw claim.failure;
      return claim!.vm;
    },
    {
      // A retried request finds this run; a different one under the same name is a conflict.
      validator: (asked) => {
        if (JSON.stringify(asked) !== JSON.stringify(request)) {
          throw ApplicationFailure.create({
            type: 'KeyConflict',
            message: `name:${request.name} is already held by vm ${request.name}`,
            details: [{ key: `name:${request.name}`, holder: `vm ${request.name}` }],
            nonRetryable: true,
          });
        }
        if (projected() === 'gone' && create?.status !== 'running') {
          throw rejected(`vm ${request.name} is being decommissioned; create it again once gone`);
        }
      },
    },
  );
  serve(startUpdate, 'start', (op) => ops.start(vm, op));
  serve(stopUpdate, 'stop', (op) => ops.stop(vm, op));
  serve(
    shutdownUpdate,
    'shutdown',
    (op, args) => ops.shutdown(vm, op, args ?? {}),
    (args) => ({ shutdown: args ?? {} }),
  );
  serve(rebootUpdate, 'reboot', (op) => ops.reboot(vm, op));
  serve(
    migrateUpdate,
    'migrate',
    (op, args) => ops.migrate(vm, op, args ?? {}),
    (args) => ({ migrate: args ?? {} }),
  );
  serve(reprovisionUpdate, 'reprovision', (op) => ops.reprovision(vm, op));
  serve(decommissionUpdate, 'decommission', (op) => ops.decommission(vm, op));
  serve(evacuateUpdate, 'evacuate', (op, args) => ops.evacuate(vm, op, args));

  // The last operation, when it failed, once more: its kind and input, judged as it would be.
  // Only while it is the latest one accepted: a second retry, or one sent behind another
  // operation, would run an old failure again after the VM moved on.
  const latest = () => records.at(-1);
  let createFailure: unknown = null;
  setHandler(
    retryUpdate,
    () => {
      const { kind, args = [] } = latest()!;
      if (kind !== 'create') return run(kind, args, served.get(kind)!.fn);
      const kept = claim && 'vm' in claim ? claim.vm : undefined;
      if (!kept) throw rejected(`vm ${vm.name} kept nothing of its create to place again`);
      return run(kind, [], async (op) => {
        await createSaga(vm, request, 'keep', op, () => {}, kept);
        createFailure = null; // the run ends as its VM does, not as the first attempt did
      });
    },
    {
      validator: () => {
        const last = latest();
        const kept = claim !== undefined && 'vm' in claim;
        const check = last && served.get(last.kind)?.check(...(last.args ?? []));
        const why = retryRejection(vm.name, last, projected(), vm.host, kept, check ?? {});
        if (why !== null) throw rejected(why);
      },
    },
  );

  if (create) {
    await inTurn(create, (op) => createSaga(vm, request, onFailure, op, (c) => (claim = c))).catch(
      (err: unknown) => (createFailure = err),
    );
  }

  for (;;) {
    await condition(
      () =>
        vm.state === 'gone' ||
        (queue.length === 0 &&
          (workflowInfo().continueAsNewSuggested || finished >= (input.continueAfter ?? Infinity))),
    );
    // Every accepted operation gets its answer before this run ends.
    await condition(allHandlersFinished);
    if (vm.state === 'gone') {
      view.publish(); // now: nothing may follow the workflow's last command
      if (createFailure) throw createFailure;
      return { ...vm, operation: null, queued: [], operations: records };
    }
    if (queue.length === 0) break;
  }
  view.publish();
  const { continueAfter } = input;
  // The next run is new: it begins at the newest revision this code knows.
  return makeContinueAsNewFunc<typeof vmEntity>({ memo: revisionMemo() })({
    request,
    onFailure,
    ...(continueAfter === undefined ? {} : { continueAfter }),
    carried: {
      vm,
      claimed: claim && 'vm' in claim ? claim.vm : null,
      operations: records,
      generation,
      resetInChain: inherited || runId !== workflowInfo().originalExecutionRunId,
    },
  });
}
