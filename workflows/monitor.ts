import { ActivityFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { MonitorActivities } from '../activities/monitor.ts';
import type {
  ActionOutcome,
  HostPoll,
  MonitorTarget,
  ReconcileAction,
  ReconcilePlan,
  ReconcilePolicies,
  RegisteredVm,
} from '../common/messages.ts';

/** Registry reads and writes: quick, retried a few times. */
const registry = proxyActivities<MonitorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 5 },
});

/**
 * One short try per host: a host that does not answer in time counts as a failure for that
 * host (the next run asks again), never as a failure of the run.
 */
const poll = proxyActivities<MonitorActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { maximumAttempts: 1 },
});

/** Actions reach hosts (power-off) or the registry: a few tries, then reported as failed. */
const act = proxyActivities<MonitorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

export interface MonitorInput {
  /** Poll only these hosts (`hosts.poll({ name })`); all by default. */
  hosts?: string[];
  /** The cluster's policies; report-only when not given. */
  policies?: ReconcilePolicies;
}

/** The report kinds: `unknown` split by whose domain it is, as the policies are. */
export type ReportKind =
  | 'missing'
  | 'unknownOurs'
  | 'unknownForeign'
  | 'misplaced'
  | 'duplicated'
  | 'drifted'
  | 'orphanedHold'
  | 'orphanedAllocation'
  | 'stuck';

export interface MonitorReport {
  hosts: Array<{
    name: string;
    state: MonitorTarget['state'];
    answered: boolean;
    /** Polls in a row without an answer. */
    failures: number;
    error?: string;
    freeMemoryMiB?: number;
    domains?: number;
  }>;
  counts: Record<ReportKind, number>;
  discrepancies: Array<{
    kind: ReportKind;
    host: string;
    vm?: string;
    domain?: string;
    detail: string;
  }>;
  actions: Array<{
    kind: ReconcileAction['kind'];
    target: string;
    outcome: ActionOutcome | `failed: ${string}`;
  }>;
}

const reason = (err: unknown) =>
  err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);

/**
 * Polls every host, reconciles the registry against what they report, applies what the
 * policies ask and returns the report (shown in the Temporal UI, kept for `hosts.monitor`).
 */
export async function monitorCluster(input: MonitorInput = {}): Promise<MonitorReport> {
  const targets = await registry.monitorTargets(input.hosts);
  // Read before the polls: a VM created meanwhile is then `pending`..`starting` here, never
  // "missing", and its fresh domain is checked against the registry again before any power-off.
  const vms = await registry.monitorSnapshot();
  const answers = await Promise.all(
    targets.map((t) =>
      poll.pollHost(t).then(
        (status) => ({ host: t.name, status, error: null }),
        (err: unknown) => ({ host: t.name, status: null, error: reason(err) }),
      ),
    ),
  );
  const records = await registry.recordPolls(answers.map(({ host, error }) => ({ host, error })));
  const polls: HostPoll[] = answers.map((a, i) => ({
    host: a.host,
    status: a.status,
    failures: records[i]?.failures ?? 0,
    downByMonitor: records[i]?.downByMonitor ?? false,
  }));
  const plan = await registry.planReconcile(vms, polls, input.policies);

  const byId = new Map(vms.map((vm) => [vm.id, vm]));
  const actions = await Promise.all(
    plan.actions.map(async (action) => {
      const vm = 'vmId' in action ? byId.get(action.vmId) : undefined;
      const outcome = await act
        .applyMonitorAction(action, vm)
        .catch((err: unknown) => `failed: ${reason(err)}` as const);
      return { kind: action.kind, target: targetOf(action, vm), outcome };
    }),
  );

  const report: MonitorReport = {
    hosts: targets.map((t, i) => {
      const a = answers[i]!;
      return {
        name: t.name,
        state: t.state,
        answered: a.status !== null,
        failures: polls[i]!.failures,
        ...(a.error !== null ? { error: a.error } : {}),
        ...(a.status
          ? { freeMemoryMiB: a.status.freeMemoryMiB, domains: a.status.domains.length }
          : {}),
      };
    }),
    ...describe(plan),
    actions,
  };
  const perHost: Record<string, Record<string, number>> = {};
  for (const h of report.hosts.filter((h) => h.answered)) perHost[h.name] = {};
  for (const d of report.discrepancies) {
    const counts = perHost[d.host];
    if (counts) counts[d.kind] = (counts[d.kind] ?? 0) + 1;
  }
  await registry.recordMonitorReport({ ...report, workflowId: workflowInfo().workflowId }, perHost);
  return report;
}

function targetOf(action: ReconcileAction, vm: RegisteredVm | undefined): string {
  switch (action.kind) {
    case 'host-figures':
    case 'host-down':
    case 'host-up':
      return action.host;
    case 'power-off':
      return `${action.domain} on ${action.host}`;
    case 'unassign':
    case 'adopt-host':
    case 'adopt-state':
      return vm?.name ?? action.vmId;
  }
}

function describe(plan: ReconcilePlan): Pick<MonitorReport, 'counts' | 'discrepancies'> {
  const counts: Record<ReportKind, number> = {
    missing: 0,
    unknownOurs: 0,
    unknownForeign: 0,
    misplaced: 0,
    duplicated: 0,
    drifted: 0,
    orphanedHold: 0,
    orphanedAllocation: 0,
    stuck: 0,
  };
  const discrepancies = plan.discrepancies.map((d): MonitorReport['discrepancies'][number] => {
    switch (d.kind) {
      case 'missing':
        return {
          kind: d.kind,
          host: d.host,
          vm: d.vm.name,
          detail: `${d.vm.name} is ${d.vm.state} in the registry but not on ${d.host}`,
        };
      case 'unknown': {
        const kind = d.ours ? 'unknownOurs' : 'unknownForeign';
        const whose = d.ours ? `vagoth's (VM ${d.domain.vagothId ?? ''})` : 'foreign';
        return {
          kind,
          host: d.host,
          domain: d.domain.name,
          detail: `${d.domain.name} (${d.domain.state}, ${whose}) is unknown to the registry`,
        };
      }
      case 'misplaced':
        return {
          kind: d.kind,
          host: d.actual,
          vm: d.vm.name,
          detail: `${d.vm.name} runs on ${d.actual}, recorded on ${d.recorded ?? 'no host'}`,
        };
      case 'duplicated':
        return {
          kind: d.kind,
          host: d.hosts[0] ?? '',
          vm: d.vm.name,
          detail: `${d.vm.name} is on ${d.hosts.join(' and ')}`,
        };
      case 'drifted':
        return {
          kind: d.kind,
          host: d.host,
          vm: d.vm.name,
          detail: `${d.vm.name} is ${d.actual} on ${d.host}, ${d.vm.state} in the registry`,
        };
      case 'orphanedHold': {
        const { hold } = d;
        const room = hold.host ? `holds room on ${hold.host}` : 'holds no room';
        const vm = hold.vm ? `its VM ${hold.vm.name} is ${hold.vm.state}` : 'its VM is gone';
        return {
          kind: d.kind,
          host: hold.host ?? '',
          ...(hold.vm ? { vm: hold.vm.name } : {}),
          detail: `migration hold ${hold.holder} ${room}, but ${vm}`,
        };
      }
      case 'orphanedAllocation':
        return {
          kind: d.kind,
          host: d.holder.host ?? '',
          detail: `${d.holder.type} ${d.holder.holder} holds room on ${d.holder.host ?? 'no host'}, and is no VM`,
        };
      case 'stuck': {
        const workflow =
          d.workflow === 'gone'
            ? 'its workflow is not running'
            : 'its workflow has no operation under way';
        return {
          kind: d.kind,
          host: d.vm.host ?? '',
          vm: d.vm.name,
          detail: `${d.vm.name} has been ${d.vm.state} for ${d.ageSeconds} s or more, and ${workflow}`,
        };
      }
    }
  });
  for (const d of discrepancies) counts[d.kind]++;
  return { counts, discrepancies };
}
