import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

/** Forward steps: transient errors retry with backoff, then the saga compensates. */
export const steps = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 8,
  },
});

/** Steps a caller waits on (registering a host): a few quick tries, then the answer. */
export const probe = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 3 },
});

/** Waiting for a domain to boot: long, so it heartbeats. */
export const boot = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
});

/**
 * Compensations and teardown never give up on a transient error: leaking a domain or a
 * claimed key is worse than waiting for a host to come back.
 */
export const cleanup = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
