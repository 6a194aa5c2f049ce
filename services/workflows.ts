import { ApplicationFailure, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ReconcileOutcome, ServiceActivities } from './activities.ts';

// A tick fails a few times at most; the next tick of the schedule tries again anyway.
const retry = { maximumAttempts: 3, nonRetryableErrorTypes: ['ServiceNotFoundError'] };

const { reconcileService: reconcileHere } = proxyLocalActivities<ServiceActivities>({
  // A step runs in the worker that took the workflow's task: no activity task to schedule,
  // dispatch and complete, and most ticks find nothing to do. A worker killed mid-step lets
  // the task time out, and the next worker runs the step again (its lease,
  // services/step-lease.ts, keeps two from acting).
  startToCloseTimeout: '10 minutes',
  retry,
});

const { reconcileService: reconcile } = proxyActivities<ServiceActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '20 seconds',
  retry,
});

function outcomeOf(serviceId: string, outcome: ReconcileOutcome | null) {
  if (outcome === null) {
    throw ApplicationFailure.nonRetryable(`service ${serviceId} is gone`, 'ServiceNotFoundError');
  }
  return outcome;
}

/**
 * One reconcile of a service, started by its schedule (`service:<project>/<name>`) every
 * period and at once after a change: reads its instances from its clouds, plans, acts, and
 * records what it did and why (services/activities.ts), in one local activity. The schedule
 * allows no two at once.
 */
export async function serviceReconcile(serviceId: string) {
  return outcomeOf(serviceId, await reconcileHere(serviceId));
}

/**
 * The reconcile as schedules started it before `serviceReconcile`: its step an ordinary
 * activity. Kept for runs begun then; workers move every schedule to `serviceReconcile` as
 * they start (services/schedules.ts), and this goes once none of its runs can be open. A
 * new workflow type rather than `patched()`: a patch upserts a search attribute on every
 * run, one Temporal action more per tick for as long as the patch stays.
 */
export async function reconcileServiceWorkflow(serviceId: string) {
  return outcomeOf(serviceId, await reconcile(serviceId));
}
