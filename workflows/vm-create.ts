import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import type { OperationRef, Vm, VmRequest } from '../activities/index.ts';
import { rootFailure } from './failure.ts';
import { boot, cleanup, long, steps, wipe } from './proxies.ts';
import type { VmFacts } from './vm-operations.ts';

export type OnFailure = 'remove' | 'keep';

export type Claim = { vm: Vm } | { failure: ApplicationFailure };

/**
 * The create saga: claim, place, provision storage, define, boot, wait until the host reports
 * it running. Each step that took something pushes its undo, pushed before the call when a
 * call that landed but whose answer was lost would leave something behind. On failure the
 * undos run in reverse; then the VM is removed, or kept `failed` with the reason, as asked.
 * `vm` is updated as the saga goes, so the entity's query shows it.
 */
export async function createSaga(
  vm: VmFacts,
  request: VmRequest,
  onFailure: OnFailure,
  operation: OperationRef,
  onClaim: (claim: Claim) => void,
): Promise<void> {
  const undo: Array<() => Promise<void>> = [];
  let step = 'claiming';
  let claimed = false;
  try {
    const record = await steps.claimVm(request, operation);
    vm.vmId = record.id;
    vm.state = 'pending';
    claimed = true;
    onClaim({ vm: record });
    const id = record.id;

    step = 'placing';
    await move(vm, ['pending'], 'placing', operation);
    undo.unshift(() => cleanup.releaseAllocation(id));
    vm.host = await steps.placeVm({ id, definition: record.definition });

    step = 'provisioning';
    await move(vm, ['placing'], 'provisioning', operation);
    undo.unshift(() => cleanup.releaseVolumes(id));
    // A VM without disk or image has no volumes: then there is nothing to provision or wipe.
    if ((await steps.claimVolumes(id)).length > 0) {
      undo.unshift(() => wipe.deprovisionVolumes(id));
      await long.provisionVolumes(id);
    }

    step = 'defining';
    await move(vm, ['provisioning'], 'defining', operation);
    undo.unshift(() => cleanup.undefineDomain(id));
    await steps.defineDomain(id);

    step = 'starting';
    await move(vm, ['defining'], 'starting', operation);
    await steps.startDomain(id);
    await boot.waitRunning(id);
    await move(vm, ['starting'], 'running', operation);
  } catch (err) {
    const failure = rootFailure(err);
    if (!claimed) onClaim({ failure });
    const reason = `create ${request.name} failed while ${step}: ${failure.message}`;
    await CancellationScope.nonCancellable(async () => {
      for (const u of undo) {
        try {
          await u();
        } catch (undoErr) {
          log.error('compensation failed', { error: String(undoErr) });
        }
      }
      if (!claimed) return;
      if (onFailure === 'keep') {
        await cleanup.transitionVm(vm.vmId!, [...CREATE_STATES], 'failed', {
          operation,
          error: reason,
        });
        vm.state = 'failed';
        vm.host = null;
        vm.error = reason;
      } else {
        await cleanup.deleteVm(vm.vmId!);
        vm.state = 'gone';
      }
    });
    if (!claimed) vm.state = 'gone';
    throw ApplicationFailure.create({
      type: failure.type ?? 'Internal',
      message: reason,
      details: failure.details ?? [],
      nonRetryable: true,
    });
  }
}

const CREATE_STATES = [
  'pending',
  'placing',
  'provisioning',
  'defining',
  'starting',
  'running',
] as const;

/** Compare-and-set in the registry, then in the entity's own view. */
export async function move(
  vm: VmFacts,
  from: VmFacts['state'][],
  to: Exclude<VmFacts['state'], 'gone'>,
  operation: OperationRef,
  error: string | null = null,
): Promise<void> {
  const fromStates = from.filter((s): s is Exclude<typeof s, 'gone'> => s !== 'gone');
  await steps.transitionVm(vm.vmId!, fromStates, to, { operation, error });
  vm.state = to;
  vm.error = error;
}
