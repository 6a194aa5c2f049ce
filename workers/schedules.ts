import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
} from '@temporalio/client';
import { attributePairs } from '../common/search-attributes.ts';
import { monitorScheduledWorkflowId } from '../common/vocabulary.ts';
import type { ReconcilePolicies } from '../monitor/reconcile.ts';
import { monitorCluster } from '../workflows/index.ts';

/** One schedule per Temporal namespace: every worker start-up converges on it. */
export const MONITOR_SCHEDULE_ID = 'vagoth-monitor';

export interface MonitorScheduleOptions {
  taskQueue: string;
  intervalSeconds: number;
  policies: ReconcilePolicies;
  /** Tests use one of their own, so parallel test files never share a schedule. */
  scheduleId?: string;
}

/**
 * Creates the monitor's schedule, or brings an existing one in line with this worker's
 * configuration (interval, policies, task queue): safe to call at every start-up, from any
 * number of workers. The last one started wins, which is the configuration just deployed.
 */
export async function ensureMonitorSchedule(
  client: Client,
  options: MonitorScheduleOptions,
): Promise<'created' | 'updated'> {
  const scheduleId = options.scheduleId ?? MONITOR_SCHEDULE_ID;
  const spec: ScheduleSpec = { intervals: [{ every: `${options.intervalSeconds}s` }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof monitorCluster> = {
    type: 'startWorkflow',
    workflowType: monitorCluster,
    args: [{ policies: options.policies }],
    taskQueue: options.taskQueue,
    workflowId: monitorScheduledWorkflowId(options.scheduleId),
    staticSummary: 'monitor: poll every host and reconcile the registry',
    typedSearchAttributes: attributePairs({ VagothKind: 'monitor' }),
    // A run that hangs must not hold the schedule: SKIP would skip every later one.
    workflowRunTimeout: `${Math.max(60, options.intervalSeconds * 4)}s`,
  };
  const policies = {
    // A run still going when the next is due is not doubled up.
    overlap: ScheduleOverlapPolicy.SKIP,
    // After an outage, one run catches up, not a burst of every missed one.
    catchupWindow: `${Math.max(10, options.intervalSeconds)}s`,
  };
  // What the schedule does, in the UI's schedule page (the memo is set when it is created).
  const memo = {
    purpose:
      `Every ${options.intervalSeconds} s, polls every host's status, marks hosts that stop ` +
      'answering down, and reconciles the registry with what the hosts report (hosts.monitor ' +
      'shows the last report)',
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies, memo });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule
    .getHandle(scheduleId)
    .update((previous) => ({ ...previous, spec, action, policies }));
  return 'updated';
}
