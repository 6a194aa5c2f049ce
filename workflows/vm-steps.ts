import type { OperationRef, StepStates, Transition, VmFacts } from '../common/messages.ts';
import { boot, steps } from './proxies.ts';

// The steps the create saga (vm-create.ts) and the other operations (vm-operations.ts) share:
// each changes the VM's state in the registry and in the entity's own view together.

type Live = Exclude<VmFacts['state'], 'gone'>;

/** A registry state change made inside a step, compare-and-set from `from`. */
export function transition(
  from: VmFacts['state'][] | 'any',
  to: Live,
  operation: OperationRef,
  error: string | null = null,
): Transition {
  const live = from === 'any' ? from : from.filter((s): s is Live => s !== 'gone');
  return { from: live, to, operation, error };
}

/**
 * The state a step enters before its side effect: mirrored at once in the entity's own view
 * (the entity is its VM's only writer), recorded in the registry by the step itself.
 */
export function entering(
  vm: VmFacts,
  from: VmFacts['state'][] | 'any',
  to: Live,
  operation: OperationRef,
  error: string | null = null,
): Transition {
  vm.state = to;
  vm.error = error;
  return transition(from, to, operation, error);
}

/**
 * Starts the domain and waits until its host reports it running: a heartbeating activity,
 * needed only when the host does not say so at once (a slow host, an agent that boots late).
 * With `from`, the VM goes from there to `starting`, then `running`; without, its state is
 * the caller's to keep. `start` is the step that boots it (startDomain, unless the caller's
 * own step boots as it goes).
 */
export async function startAndWait(
  vm: VmFacts,
  operation: OperationRef,
  from?: VmFacts['state'][],
  start: (states: StepStates) => Promise<boolean> = (states) => steps.startDomain(vm.vmId!, states),
): Promise<void> {
  const id = vm.vmId!;
  const states: StepStates = from
    ? {
        enter: entering(vm, from, 'starting', operation),
        done: transition(['starting'], 'running', operation),
      }
    : {};
  if (await start(states)) {
    if (from) vm.state = 'running';
    return;
  }
  await boot.waitRunning(id);
  if (from) await move(vm, ['starting'], 'running', operation);
}

/** Compare-and-set in the registry, then in the entity's own view: a step of its own. */
export async function move(
  vm: VmFacts,
  from: VmFacts['state'][],
  to: Live,
  operation: OperationRef,
  error: string | null = null,
): Promise<void> {
  const t = transition(from, to, operation, error);
  await steps.transitionVm(vm.vmId!, t.from, to, { operation, error });
  vm.state = to;
  vm.error = error;
}
