import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import type { OperationRef, Vm, VmFacts, VmRequest } from '../common/messages.ts';
import { rootFailure } from './failure.ts';
import { cleanup, moving, steps, wipe } from './proxies.ts';
import { since } from './revisions.ts';
import { entering, startAndWait } from './vm-steps.ts';

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
  again?: Vm,
): Promise<void> {
  const undo: Array<() => Promise<void>> = [];
  let step = 'claiming';
  let claimed = false;
  try {
    // A retried create: the VM a failed create kept (`failed`, on no host, its keys still
    // claimed) is placed again from there.
    const record = again ?? (await steps.claimVm(request, operation));
    vm.vmId = record.id;
    if (!again) vm.state = 'pending';
    claimed = true;
    if (!again) onClaim({ vm: record });
    const id = record.id;

    step = 'placing';
    undo.unshift(() => cleanup.releaseAllocation(id));
    const placing = entering(vm, again ? ['failed'] : ['pending'], 'placing', operation);
    if (since('allocate-in-one-step')) {
      undo.unshift(() => cleanup.releaseVolumes(id));
      const allocated = await steps.allocateVm({ id, definition: record.definition }, placing);
      vm.host = allocated.host;
      // A VM without disk or image has no volumes: then there is nothing to provision or wipe.
      if (allocated.volumes.length > 0) {
        step = 'provisioning';
        undo.unshift(() => wipe.deprovisionVolumes(id));
        const provisioning = entering(vm, ['placing'], 'provisioning', operation);
        await moving.provisionVolumes(id, undefined, { enter: provisioning });
      }
    } else {
      // Old path: goes once no run begun before `allocate-in-one-step` is open (revisions.ts).
      // Runs created before allocate-in-one-step: placed, then volume keys claimed, apart.
      vm.host = await steps.placeVm({ id, definition: record.definition }, placing);
      step = 'provisioning';
      undo.unshift(() => cleanup.releaseVolumes(id));
      const provisioning = entering(vm, ['placing'], 'provisioning', operation);
      if ((await steps.claimVolumes(id, { enter: provisioning })).length > 0) {
        undo.unshift(() => wipe.deprovisionVolumes(id));
        await moving.provisionVolumes(id);
      }
    }

    step = 'defining';
    undo.unshift(async () => void (await cleanup.undefineDomain(id)));
    const defining = entering(vm, ['placing', 'provisioning'], 'defining', operation);
    if (since('boot-and-retire-in-one-step')) {
      // Defined and started in one step; the host's error says which of its calls failed.
      step = 'defining and starting';
      await startAndWait(vm, operation, ['defining'], (boot) =>
        steps.defineDomain(id, { enter: defining }, boot),
      );
    } else {
      // Old path: goes once no run begun before `boot-and-retire-in-one-step` is open
      // (revisions.ts).
      await steps.defineDomain(id, { enter: defining });
      step = 'starting';
      await startAndWait(vm, operation, ['defining']);
    }
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
        const from = again ? [...CREATE_STATES, 'failed' as const] : [...CREATE_STATES];
        await cleanup.transitionVm(vm.vmId!, from, 'failed', {
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
