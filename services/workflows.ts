import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ServiceActivities } from './activities.ts';

const { reconcileService: reconcile } = proxyActivities<ServiceActivities>({
  startToCloseTimeout: '2 minutes',
  // A tick that fails is tried a few times; the next tick of the schedule tries again anyway.
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['ServiceNotFoundError'] },
});

/**
 * One reconcile of a service, started by its schedule (`service:<project>/<name>`) every
 * period and at once after a change: reads its instances from its cloud, plans, acts, and
 * records what it did and why (services/activities.ts). The schedule allows no two at once.
 */
export async function reconcileServiceWorkflow(serviceId: string) {
  const outcome = await reconcile(serviceId);
  if (outcome === null) {
    throw ApplicationFailure.nonRetryable(`service ${serviceId} is gone`, 'ServiceNotFoundError');
  }
  return outcome;
}
