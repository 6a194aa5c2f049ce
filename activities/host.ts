import { Context, activityInfo, heartbeat } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { StateConflictError } from '../registry/errors.ts';
import { getHost, setHostState, vmsOnHost, type HostedVm } from '../registry/hosts.ts';
import { commitMigration } from '../registry/vm-migration.ts';
import { getVmById } from '../registry/vms.ts';
import type { HostState } from '../registry/types.ts';
import type { OperationOutcome } from '../workflows/vm-operations.ts';

export interface HostActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  actor: () => ActorOptions;
}

/** How long a host in maintenance gets to answer before it counts as unreachable. */
const ANSWER_WITHIN_MS = 5_000;

/** One VM of a drain: where it went, or why it stayed (its state untouched by the attempt). */
export type DrainOutcome =
  { vm: string; moved: true; to: string } | { vm: string; moved: false; reason: string };

/** The first message in a failure's cause chain that says more than "update failed". */
function reasonOf(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (!(e instanceof WorkflowUpdateFailedError)) message = e.message;
  }
  return message;
}

/** Activities of the host lifecycle workflows (workflows/host-*.ts). */
export function createHostActivities({ sql, drivers, actor }: HostActivityDeps) {
  return {
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
     * is taken at the caller's word.
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
      if (host.state === 'down') return;
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
    },

    /** Moves the VM's record and room to the held target; answers the VM's host. Idempotent. */
    async commitEvacuation(vmId: string): Promise<string> {
      const vm = await getVmById(sql, vmId);
      return (await commitMigration(sql, vm, actor())) ?? (await getVmById(sql, vmId)).host!;
    },

    /**
     * Sends the VM's entity workflow `migrate` (off `host`; the allocator picks the target,
     * live where the driver can) or `evacuate` (from fenced `host`), and waits for the outcome.
     * Going through the entity queues it behind the VM's other operations, never interleaved.
     * The Update's id is fixed by the calling run, so a retried attempt joins the same Update
     * instead of sending another. A refusal or a failed move is an answer, not an error: the
     * entity has already put the VM back where it was (or marked it failed, saying why).
     */
    async moveVmOff(
      vm: HostedVm,
      host: string,
      kind: 'migrate' | 'evacuate',
    ): Promise<DrainOutcome> {
      const now = await getVmById(sql, vm.id);
      if (now.host !== host) return { vm: vm.name, moved: true, to: now.host ?? '(none)' };
      const run = activityInfo().workflowExecution;
      const handle = Context.current().client.workflow.getHandle(`vm:${vm.name}`);
      const timer = setInterval(() => heartbeat(), 5_000);
      try {
        const outcome = await handle.executeUpdate<OperationOutcome, [unknown]>(kind, {
          args: [kind === 'migrate' ? { live: true } : { from: host }],
          updateId: `${kind}:${host}:${run?.runId ?? activityInfo().activityId}`,
        });
        return { vm: vm.name, moved: true, to: outcome.host ?? '(none)' };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError) {
          return { vm: vm.name, moved: false, reason: reasonOf(err) };
        }
        throw err;
      } finally {
        clearInterval(timer);
      }
    },
  };
}
