import { Context, heartbeat } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type {
  DrainOutcome,
  Host,
  HostedVm,
  HostRegistration,
  HostState,
  OperationOutcome,
  Vm,
} from '../common/messages.ts';
import { vmWorkflowId } from '../common/vocabulary.ts';
import type { DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { nullIfNotFound, StateConflictError } from '../registry/errors.ts';
import { getHost, insertHost, setHostState, vmsOnHost } from '../registry/hosts.ts';
import { commitMigration } from '../registry/vm-migration.ts';
import { forgetVolumesOnHost } from '../registry/vm-volumes.ts';
import { getVmById } from '../registry/vms.ts';

export interface HostActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  actor: () => ActorOptions;
}

/** How long a host in maintenance gets to answer before it counts as unreachable. */
const ANSWER_WITHIN_MS = 5_000;

/** The VM, or null if it is gone (decommissioned while the drain ran). */
async function vmIfAny(sql: Sql, id: string): Promise<Vm | null> {
  return getVmById(sql, id).catch(nullIfNotFound);
}

const goneOutcome = (vm: HostedVm): DrainOutcome => ({
  vm: vm.name,
  moved: false,
  reason: 'decommissioned before it could be moved',
  gone: true,
});

/** The first message in a failure's cause chain that says more than "update failed". */
function reasonOf(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (!(e instanceof WorkflowUpdateFailedError)) message = e.message;
  }
  return message;
}

/** Activities of the host workflows (workflows/register-host.ts, workflows/host-*.ts). */
export function createHostActivities({ sql, drivers, actor }: HostActivityDeps) {
  return {
    /** Memory comes from the host; vCPUs too, unless declared (geats reports no CPU count). */
    async registerHost({ vcpus, ...host }: HostRegistration): Promise<Host> {
      const driver = drivers.get(host);
      const { capacity } = await driver.status();
      // Which hypervisor this is, so a second name or spelling of it is refused.
      const identity = await driver.hostId?.();
      return insertHost(
        sql,
        {
          ...host,
          identity,
          capacity: { vcpus: vcpus ?? capacity.vcpus, memoryMiB: capacity.memoryMiB },
        },
        actor(),
      );
    },

    async setHostState(name: string, state: HostState): Promise<void> {
      await setHostState(sql, name, state);
    },

    async vmsOnHost(name: string): Promise<HostedVm[]> {
      return vmsOnHost(sql, name);
    },

    /**
     * Evacuation restarts VMs elsewhere, so it is only safe when the host cannot run them any
     * more. The caller vouches for fencing; this refuses what is plainly not dead: an active
     * host, or one in maintenance that still answers (drain that one instead). A `down` host
     * is taken at the caller's word. Once it passes, the volumes recorded on the host of VMs
     * no longer on it (a move's source not yet wiped, a VM the monitor took off it) are
     * forgotten: nothing will ever wipe them through a dead host, and their VMs' decommission
     * and the host's removal would wait for it forever.
     */
    async checkEvacuable(name: string): Promise<void> {
      const host = await getHost(sql, name);
      const refuse = (state: string) =>
        new StateConflictError(
          `host ${name}`,
          state,
          'evacuate it; only a down host, or one in maintenance that does not answer, can be',
        );
      if (host.state === 'active') throw refuse('active');
      if (host.state !== 'down') {
        const answered = await Promise.race([
          drivers
            .get(host)
            .status()
            .then(
              () => true,
              () => false,
            ),
          new Promise<false>((r) => setTimeout(() => r(false), ANSWER_WITHIN_MS).unref()),
        ]);
        if (answered) throw refuse('in maintenance and answering (drain it instead)');
      }
      await forgetVolumesOnHost(sql, name, actor());
    },

    /**
     * Moves the VM's record and room to the held target, leaving its volumes on the fenced
     * host off the record (it starts afresh there); answers the VM's host. Idempotent.
     */
    async commitEvacuation(vmId: string): Promise<string> {
      const vm = await getVmById(sql, vmId);
      const committed = await commitMigration(sql, vm, actor(), { forgetSourceVolumes: true });
      return committed ?? (await getVmById(sql, vmId)).host!;
    },

    /**
     * Sends the VM's entity workflow `migrate` (off `host`; the allocator picks the target,
     * live where the driver can) or `evacuate` (from fenced `host`), and waits for the outcome.
     * Going through the entity queues it behind the VM's other operations, never interleaved.
     * The Update's id is fixed by the calling run and its `key` (one per drain or evacuation
     * of that run), so a retried attempt joins the same Update instead of sending another,
     * and a later drain never finds an earlier one's. A refusal or a failed move is an answer,
     * not an error: the entity has already put the VM back where it was, or marked it failed
     * where it went, saying why; the registry says which.
     */
    async moveVmOff(
      vm: HostedVm,
      host: string,
      kind: 'migrate' | 'evacuate',
      key: string,
    ): Promise<DrainOutcome> {
      const before = await vmIfAny(sql, vm.id);
      if (!before) return goneOutcome(vm);
      if (before.host !== host) return whereItIs(before);
      const handle = Context.current().client.workflow.getHandle(vmWorkflowId(vm.name));
      const timer = setInterval(() => heartbeat(), 5_000);
      try {
        const outcome = await handle.executeUpdate<OperationOutcome, [unknown]>(kind, {
          args: [kind === 'migrate' ? { live: true } : { from: host }],
          updateId: `${kind}:${host}:${key}`,
        });
        const note = outcome.note === undefined ? {} : { note: outcome.note };
        return { vm: vm.name, moved: true, to: outcome.host ?? '(none)', ...note };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError) {
          const after = await vmIfAny(sql, vm.id);
          if (!after) return goneOutcome(vm);
          if (after.host !== host) return whereItIs(after, reasonOf(err));
          return { vm: vm.name, moved: false, reason: reasonOf(err) };
        }
        throw err;
      } finally {
        clearInterval(timer);
      }
    },
  };
}

/** A VM no longer on the host it was moved off: moved, or failed where it went (with why). */
function whereItIs(vm: Vm, why?: string): DrainOutcome {
  const on = vm.host ?? '(none)';
  if (vm.state !== 'failed') return { vm: vm.name, moved: true, to: on };
  return { vm: vm.name, moved: false, reason: vm.error ?? why ?? 'failed', failedOn: on };
}
