import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import type {
  EntityState,
  EvacuateRequest,
  MigrateRequest,
  OperationRef,
  ShutdownArgs,
  VmFacts,
} from '../common/messages.ts';
import { rootFailure } from './failure.ts';
import { boot, cleanup, long, moving, shutdownProxy, steps, wipe } from './proxies.ts';
import { since } from './revisions.ts';
import { entering, move, startAndWait, transition } from './vm-steps.ts';

/** Raised when an operation that was valid when accepted finds the VM no longer fits it. */
function stateConflict(vm: VmFacts, what: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'StateConflict',
    message: `vm ${vm.name} is ${vm.state}; cannot ${what}`,
    nonRetryable: true,
  });
}

function mustBe(vm: VmFacts, what: string, ...allowed: EntityState[]): string {
  if (!allowed.includes(vm.state) || vm.vmId === null) throw stateConflict(vm, what);
  return vm.vmId;
}

export async function start(vm: VmFacts, op: OperationRef): Promise<void> {
  if (vm.state === 'running') return; // idempotent: already where asked
  mustBe(vm, 'start', 'stopped');
  await recovering(vm, op, 'stopped', () => startAndWait(vm, op, ['stopped']));
}

export async function stop(vm: VmFacts, op: OperationRef): Promise<void> {
  if (vm.state === 'stopped') return;
  const id = mustBe(vm, 'stop', 'running');
  await recovering(vm, op, 'running', () =>
    steps.stopDomain(id, {
      enter: entering(vm, ['running'], 'stopping', op),
      done: transition(['stopping'], 'stopped', op),
    }),
  );
  vm.state = 'stopped';
}

/** Graceful; after `timeoutMs` the guest is powered off if `force`, else the VM stays running. */
export async function shutdown(vm: VmFacts, op: OperationRef, args: ShutdownArgs): Promise<void> {
  if (vm.state === 'stopped') return;
  const id = mustBe(vm, 'shut down', 'running');
  const timeoutMs = args.timeoutMs ?? 60_000;
  await move(vm, ['running'], 'stopping', op);
  await recovering(vm, op, 'running', () =>
    shutdownProxy(timeoutMs).shutdownDomain(id, { timeoutMs, force: args.force ?? false }),
  );
  await move(vm, ['stopping'], 'stopped', op);
}

export async function reboot(vm: VmFacts, op: OperationRef): Promise<void> {
  const id = mustBe(vm, 'reboot', 'running');
  await move(vm, ['running'], 'rebooting', op);
  await recovering(vm, op, 'running', async () => {
    await steps.rebootDomain(id);
    await boot.waitRunning(id);
  });
  await move(vm, ['rebooting'], 'running', op);
}

/**
 * Room on the target is claimed before anything moves and released on the source only after
 * the domain runs there, so the VM is never without a place and no host is over-committed.
 */
export async function migrate(
  vm: VmFacts,
  op: OperationRef,
  args: MigrateRequest,
): Promise<string | undefined> {
  const id = mustBe(vm, 'migrate', 'running', 'stopped');
  const before = vm.state as 'running' | 'stopped';
  const source = vm.host!;
  await move(vm, [before], 'migrating', op);
  let target: string | undefined;
  let moved: { live: boolean; note?: string };
  try {
    target = await steps.reserveMigration(id, args.host);
    moved = await moving.migrateDomain(id, target, args.live ?? true);
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      // What the move made on the target (its volumes, a copy cut short) goes with it.
      // Refused while the VM's domain is there: those volumes stay on record under the target.
      // Old path (nothing discarded): goes once no run begun before `failed-move-wipes-target`
      // is open (revisions.ts).
      if (target !== undefined && since('failed-move-wipes-target')) {
        // A few attempts, not cleanup's patience: a target that does not answer (the usual
        // reason a move fails) must not keep the VM migrating; its volumes stay on record.
        await long.discardMoveTarget(id, target).catch((discardErr: unknown) => {
          log.warn('what the move left on its target is kept', { error: String(discardErr) });
        });
      }
      await cleanup.releaseMigration(id);
      await move(vm, ['migrating'], before, op, rootFailure(err).message);
    });
    throw err;
  }
  await cleanup.commitMigration(id);
  vm.host = target!;
  if (since('disks-move-with-vm')) {
    // The move copied each local volume to the target and checked it by digest: the source's
    // copies are this VM's alone (their vol: keys say so), wiped now; shared ones stay.
    await wipe.wipeMovedVolumes(id, source);
  } else {
    // Old path: goes once no run begun before `disks-move-with-vm` is open (revisions.ts).
    // Runs begun before disks-move-with-vm wipe every recorded volume on the source.
    await wipe.deprovisionVolumes(id, source);
  }
  await move(vm, ['migrating'], before, op);
  return moved.note;
}

/**
 * Restarts the VM on another host after its own was fenced: room is claimed elsewhere, the
 * record moves there (releasing the dead host's room) before anything starts, then volumes
 * are provisioned afresh (local disks on the dead host are lost), the domain defined and, if
 * it was running, started. The fenced host is never called: its leftovers are the monitor's
 * `duplicated`/`unknownOurs` findings should it come back.
 */
export async function evacuate(
  vm: VmFacts,
  op: OperationRef,
  args: EvacuateRequest,
): Promise<void> {
  if (vm.host !== args.from) return; // already elsewhere: a retried evacuation
  const id = mustBe(vm, 'evacuate', 'running', 'stopped');
  const before = vm.state as 'running' | 'stopped';
  await move(vm, [before], 'migrating', op);
  try {
    await steps.reserveMigration(id, undefined);
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      await cleanup.releaseMigration(id);
      await move(vm, ['migrating'], before, op, rootFailure(err).message);
    });
    throw err;
  }
  vm.host = await cleanup.commitEvacuation(id);
  try {
    await moving.provisionVolumes(id);
    await steps.defineDomain(id);
    if (before === 'running') await startAndWait(vm, op);
  } catch (err) {
    const reason = `evacuated to ${vm.host} but not restarted: ${rootFailure(err).message}`;
    await CancellationScope.nonCancellable(() => move(vm, ['migrating'], 'failed', op, reason));
    throw err;
  }
  await move(vm, ['migrating'], before, op);
}

/**
 * Wipe and reinstall: the same VM, keys and host, fresh volumes, booted again. Also the way
 * back for a VM that failed on its host (a restart after evacuation, an earlier reprovision).
 */
export async function reprovision(vm: VmFacts, op: OperationRef): Promise<void> {
  const id = mustBe(vm, 'reprovision', 'running', 'stopped', 'failed');
  if (vm.host === null) throw stateConflict(vm, 'reprovision on no host');
  await move(vm, ['running', 'stopped', 'failed'], 'reprovisioning', op);
  try {
    await steps.stopDomain(id);
    await moving.deprovisionVolumes(id);
    await moving.provisionVolumes(id);
    await steps.defineDomain(id);
    await startAndWait(vm, op);
  } catch (err) {
    // Half wiped is not running: say so, with why, and let decommission (or a retry) go on.
    const reason = `reprovision failed: ${rootFailure(err).message}`;
    await CancellationScope.nonCancellable(() =>
      move(vm, ['reprovisioning'], 'failed', op, reason),
    );
    throw err;
  }
  await move(vm, ['reprovisioning'], 'running', op);
}

/**
 * Power off (the volumes are about to be wiped, so a graceful shutdown protects nothing),
 * undefine, wipe the volumes, then remove the VM: its keys and its allocation go with it.
 * Teardown retries transient errors without end: a leak is worse than a wait.
 */
export async function decommission(vm: VmFacts, op: OperationRef): Promise<void> {
  if (vm.vmId === null || vm.state === 'gone') throw stateConflict(vm, 'decommission');
  const id = vm.vmId;
  const decommissioning = entering(vm, 'any', 'decommissioning', op);
  if (since('boot-and-retire-in-one-step')) {
    // One step powers off, undefines and, for a VM without volumes, removes it.
    if ((await cleanup.retireVm(id, decommissioning)) > 0) {
      // Wiping is long and heartbeats: only for a VM that has volumes left to wipe.
      await wipe.deprovisionVolumes(id);
      await cleanup.deleteVm(id);
    }
  } else {
    // Old path: goes once no run begun before `boot-and-retire-in-one-step` is open (revisions.ts).
    // Runs begun before boot-and-retire-in-one-step: power off, undefine, wipe, remove, apart.
    if (vm.host !== null) {
      await cleanup.stopDomain(id, { enter: decommissioning });
      if ((await cleanup.undefineDomain(id)) > 0) await wipe.deprovisionVolumes(id);
    } else {
      await cleanup.transitionVm(id, 'any', 'decommissioning', { operation: op });
    }
    await cleanup.deleteVm(id);
  }
  vm.state = 'gone';
  vm.host = null;
}

/** A step failed with the VM where it was: put its state back, with the reason. */
async function recovering(
  vm: VmFacts,
  op: OperationRef,
  back: 'running' | 'stopped',
  fn: () => Promise<void>,
): Promise<void> {
  const before = vm.state;
  try {
    await fn();
  } catch (err) {
    // The state the step entered, if it got that far; else still where it was.
    const during = vm.state;
    await CancellationScope.nonCancellable(async () => {
      try {
        await move(vm, [during, before], back, op, rootFailure(err).message);
      } catch (e) {
        log.error('could not restore the state', { error: String(e) });
      }
    });
    throw err;
  }
}
