// The monitor's activities: poll one host, read the registry's snapshot, decide (the pure
// reconcile), apply one action, record the report. The workflow (workflows/monitor.ts)
// orchestrates them; each is one side effect that is safe to retry.
import { activityInfo, Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { ActionOutcome } from '../common/messages.ts';
import { vmWorkflowId } from '../common/vocabulary.ts';
import type { DriverPool, HostStatus } from '../drivers/index.ts';
import {
  reconcile,
  REPORT_ONLY,
  SETTLED_STATES,
  STUCK_AFTER_SECONDS,
  type HostPoll,
  type Leftovers,
  type LingeringVm,
  type ReconcileAction,
  type ReconcilePlan,
  type ReconcilePolicies,
  type RegisteredVm,
} from '../monitor/reconcile.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { nullIfNotFound } from '../registry/errors.ts';
import {
  adoptVmHost,
  adoptVmState,
  heldRoom,
  lingeringVms,
  markHostDown,
  markHostUp,
  monitorTargets,
  recordPoll,
  recordReport,
  unassignVm,
  updateHostMetadata,
  vmExists,
  vmSnapshot,
  type MonitorTarget,
  type PollRecord,
} from '../registry/monitor.ts';
import { withFailureTypes } from './failures.ts';

export interface MonitorDeps {
  sql: Sql;
  drivers: DriverPool;
}

/** Changes the monitor makes are logged as its own, under its workflow run. */
function actor(): ActorOptions {
  const run = activityInfo().workflowExecution;
  return { actor: 'monitor', operation: run ? `${run.workflowId}/${run.runId}` : null };
}

/** VMs asked about per run at most: one query each, to the VM's own workflow. */
const MAX_LINGERING = 20;

/** What a VM's workflow says it is doing; null when it cannot say (then nothing is reported). */
async function workflowActivity(name: string): Promise<LingeringVm['workflow'] | null> {
  const handle = Context.current().client.workflow.getHandle(vmWorkflowId(name));
  try {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return 'gone';
    // The entity's 'status' query (workflows/vm-entity.ts): the running operation and the queue.
    const now = await handle.query<{ operation: unknown; queued: unknown[] }>('status');
    return now.operation !== null || now.queued.length > 0 ? 'busy' : 'idle';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'gone';
    return null;
  }
}

export function createMonitorActivities({ sql, drivers }: MonitorDeps) {
  /**
   * Room held by no VM, and VMs long in an intermediate state with what their workflows say.
   * Only VMs whose record has not changed for the threshold are asked about, at most
   * MAX_LINGERING a run, longest first: a query per suspicious VM, never one per VM.
   */
  async function leftovers(policies: ReconcilePolicies): Promise<Leftovers> {
    const olderThanSeconds = policies.stuckAfterSeconds ?? STUCK_AFTER_SECONDS;
    const [held, candidates] = await Promise.all([
      heldRoom(sql),
      lingeringVms(sql, { settled: SETTLED_STATES, olderThanSeconds, limit: MAX_LINGERING }),
    ]);
    const lingering: LingeringVm[] = [];
    for (const { ageSeconds, ...vm } of candidates) {
      const workflow = await workflowActivity(vm.name);
      if (workflow !== null) lingering.push({ vm, ageSeconds, workflow });
    }
    return { held, lingering };
  }

  async function apply(action: ReconcileAction, vm?: RegisteredVm): Promise<ActionOutcome> {
    const skipped = (why: string): ActionOutcome => `skipped: ${why}`;
    switch (action.kind) {
      case 'host-figures':
        await updateHostMetadata(
          sql,
          action.host,
          { freeMemoryMiB: action.freeMemoryMiB, load: action.load, reachable: true },
          actor(),
        );
        return 'applied';
      case 'host-down':
        await updateHostMetadata(sql, action.host, { reachable: false }, actor());
        return (await markHostDown(sql, action.host, actor()))
          ? 'applied'
          : skipped('the host is not active (down already, or in maintenance)');
      case 'host-up':
        return (await markHostUp(sql, action.host, actor()))
          ? 'applied'
          : skipped('the host has left down since');
      case 'unassign':
        if (!vm) return skipped('not in the snapshot');
        return (await unassignVm(
          sql,
          { id: vm.id, host: action.host, state: vm.state },
          `missing from host ${action.host} (found by the monitor)`,
          actor(),
        ))
          ? 'applied'
          : skipped('the VM changed since the snapshot');
      case 'adopt-host':
        if (!vm) return skipped('not in the snapshot');
        return (await adoptVmHost(sql, vm, action.host, actor()))
          ? 'applied'
          : skipped('the VM changed since the snapshot');
      case 'adopt-state':
        if (!vm) return skipped('not in the snapshot');
        return (await adoptVmState(sql, vm.id, vm.state, action.state, actor()))
          ? 'applied'
          : skipped('the VM changed since the snapshot');
      case 'power-off':
        return powerOff(action);
    }
  }

  async function powerOff(action: Extract<ReconcileAction, { kind: 'power-off' }>) {
    // The domain may belong to a VM created after the snapshot was taken; and its name may
    // have been taken by another domain since the poll.
    if (action.vagothId && (await vmExists(sql, action.vagothId))) {
      return 'skipped: the registry knows it now' as const;
    }
    const [target] = await monitorTargets(sql, [action.host]);
    const driver = drivers.get(target!);
    const info = await driver.info(action.domain);
    if (!info || info.vagothId !== action.vagothId) return 'skipped: the domain changed' as const;
    await driver.stop(action.domain);
    return 'applied' as const;
  }

  return withFailureTypes({
    async monitorTargets(names?: string[]): Promise<MonitorTarget[]> {
      return monitorTargets(sql, names);
    },

    async monitorSnapshot(): Promise<RegisteredVm[]> {
      return vmSnapshot(sql);
    },

    async pollHost(host: MonitorTarget): Promise<HostStatus> {
      return drivers.get(host).status();
    },

    async recordPolls(outcomes: Array<{ host: string; error: string | null }>) {
      // A host removed while it was polled keeps no count: the poll of the others goes on.
      const records: (PollRecord | null)[] = [];
      for (const o of outcomes) {
        records.push(await recordPoll(sql, o.host, o.error).catch(nullIfNotFound));
      }
      return records;
    },

    /**
     * The pure decision, in an activity because workflow code may not import it; the room held
     * by no VM and the lingering VMs are read here, at plan time, so that a run recorded before
     * they were reported replays with the same activities.
     */
    async planReconcile(
      vms: RegisteredVm[],
      polls: HostPoll[],
      policies: ReconcilePolicies = REPORT_ONLY,
    ): Promise<ReconcilePlan> {
      return reconcile(vms, polls, policies, await leftovers(policies));
    },

    async applyMonitorAction(action: ReconcileAction, vm?: RegisteredVm): Promise<ActionOutcome> {
      return apply(action, vm);
    },

    /**
     * The run's report for the API, and each polled host's discrepancy counts in its
     * metadata (so the node event log shows when they change, attributed to the monitor).
     */
    async recordMonitorReport(
      report: object,
      perHost: Record<string, Record<string, number>>,
    ): Promise<void> {
      const a = actor();
      await recordReport(sql, report, a.operation);
      for (const [host, counts] of Object.entries(perHost)) {
        await updateHostMetadata(sql, host, { discrepancies: counts }, a);
      }
    },
  });
}

export type MonitorActivities = ReturnType<typeof createMonitorActivities>;
