import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { OperationRef, Vm, VmRequest } from '../activities/index.ts';
import { rootFailure } from './failure.ts';
import { boot, cleanup, steps } from './proxies.ts';

export interface CreateVmInput {
  request: VmRequest;
}

/** Resolves once the VM's name and keys are claimed, or fails with why they could not be. */
export const claimedUpdate = defineUpdate<Vm, [VmRequest]>('claimed');
export const stepQuery = defineQuery<string>('step');

function sameRequest(a: VmRequest, b: VmRequest): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Claims the VM's keys, places it, defines and boots its domain. A saga: each step that
 * took something pushes its undo, and any failure runs them in reverse, so a failed create
 * leaves no domain, no key and no row behind.
 */
export async function createVm(input: CreateVmInput): Promise<Vm> {
  const { request } = input;
  const info = workflowInfo();
  const operation: OperationRef = {
    kind: 'create',
    workflowId: info.workflowId,
    runId: info.runId,
  };
  let claim: { vm: Vm } | { failure: ApplicationFailure } | undefined;
  let step = 'claiming';

  setHandler(stepQuery, () => step);
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
        if (!sameRequest(asked, request)) {
          throw ApplicationFailure.create({
            type: 'KeyConflict',
            message: `name:${request.name} is already held by vm ${request.name}`,
            details: [{ key: `name:${request.name}`, holder: `vm ${request.name}` }],
            nonRetryable: true,
          });
        }
      },
    },
  );

  const compensations: Array<() => Promise<void>> = [];
  try {
    const vm = await steps.claimVm(request, operation);
    claim = { vm };
    compensations.unshift(() => cleanup.deleteVm(vm.id));

    step = 'placing';
    await steps.transitionVm(vm.id, ['pending'], 'placing');
    const host = await steps.placeVm({ id: vm.id, definition: vm.definition });

    step = 'defining';
    await steps.transitionVm(vm.id, ['placing'], 'defining');
    // Pushed before the call: a define that landed but whose answer was lost is undone too.
    compensations.unshift(() => cleanup.undefineDomain(vm.id));
    await steps.defineDomain(vm.id);

    step = 'starting';
    await steps.transitionVm(vm.id, ['defining'], 'starting');
    await steps.startDomain(vm.id);
    await boot.waitRunning(vm.id);
    await steps.transitionVm(vm.id, ['starting'], 'running');
    step = 'done';
    await condition(allHandlersFinished);
    return { ...vm, host, state: 'running' };
  } catch (err) {
    const failure = rootFailure(err);
    claim ??= { failure };
    const failedStep = step;
    step = 'compensating';
    await CancellationScope.nonCancellable(async () => {
      for (const undo of compensations) {
        try {
          await undo();
        } catch (undoErr) {
          log.error('compensation failed', { error: String(undoErr) });
        }
      }
    });
    step = 'failed';
    await condition(allHandlersFinished);
    throw ApplicationFailure.create({
      type: failure.type ?? 'Internal',
      message: `create ${request.name} failed while ${failedStep}: ${failure.message}`,
      details: failure.details ?? [],
      nonRetryable: true,
    });
  }
}
