import {
  proxyActivities as proxyTaskActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { PERMANENT_FAILURES } from '../common/vocabulary.ts';

// A workflow's own module state (each run has its own).
let leaving: (() => void) | undefined;

/**
 * `hook` runs before each ordinary activity this run schedules: the run may wait there long
 * (a workflow task ends), so the VM entity shows first what changed (vm-entity.ts).
 */
export function onLeavingTask(hook: () => void): void {
  leaving = hook;
}

/** proxyActivities, each call preceded by the run's `onLeavingTask` hook. */
function proxyActivities<A extends object>(options: ActivityOptions) {
  const proxy = proxyTaskActivities<A>(options);
  return new Proxy(proxy, {
    get(target, name, receiver) {
      const activity: unknown = Reflect.get(target, name, receiver);
      if (typeof activity !== 'function') return activity;
      return (...args: unknown[]) => {
        leaving?.();
        return (activity as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}

/**
 * Failures retrying cannot cure (common/vocabulary.ts). activities/failures.ts already raises
 * them non-retryable; naming them here too keeps that true for any activity that forgets, and
 * shows it in the UI.
 */
const PERMANENT = [...PERMANENT_FAILURES];

/**
 * Forward steps: registry changes and quick driver calls (define, start, stop). They run as
 * local activities, in the worker that runs the workflow task, and are recorded as markers:
 * a chain of them costs the server no round trip a step, so a lifecycle is a few workflow
 * tasks rather than three events and a task per step. Transient errors retry with backoff
 * (past a minute, the backoff is a durable timer), then the saga compensates. Anything that
 * takes minutes or must heartbeat stays an ordinary activity (`boot`, `long`, `wipe`).
 */
export const steps = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 8,
    nonRetryableErrorTypes: PERMANENT,
  },
});

/** Steps a caller waits on (registering a host): a few quick tries, then the answer. */
export const probe = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: PERMANENT,
  },
});

/** Waiting for a domain to boot: long, so it heartbeats (and resumes its backoff from it). */
export const boot = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: PERMANENT,
  },
});

/** Long steps that heartbeat: `startToClose` bounds one attempt, the heartbeat a lost worker. */
function heartbeating(startToCloseTimeout: string) {
  return proxyActivities<Activities>({
    startToCloseTimeout,
    heartbeatTimeout: '1 minute',
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 5,
      nonRetryableErrorTypes: PERMANENT,
    },
  });
}

/**
 * Provisioning and wiping volumes, moving a domain: minutes on real disks. They heartbeat the
 * driver's progress, so a lost worker is noticed in a minute, not at the half-hour limit.
 */
export const long = heartbeating('30 minutes');

/**
 * Moving a domain with its disks: a cold copy of a large disk takes hours, not minutes. Each
 * attempt goes on from the offset the last one heartbeated, so the bound is per attempt and
 * generous; the heartbeat timeout still notices a lost worker within a minute. (Activity
 * options are not part of what a replay checks: runs begun before take it too.)
 */
export const moving = heartbeating('24 hours');

/**
 * Importing an image: a download of many GiB may take hours on a slow link. An attempt starts
 * the download over (a digest cannot be carried from one attempt to the next), so a few.
 */
export const importing = heartbeating('24 hours');

/** A graceful shutdown waits as long as the caller allowed the guest, plus a margin. */
export function shutdownProxy(timeoutMs: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: timeoutMs + 30_000,
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: PERMANENT },
  });
}

/**
 * Compensations and teardown never give up on a transient error: leaking a domain or a
 * claimed key is worse than waiting for a host to come back. Quick, so local like `steps`.
 */
export const cleanup = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Teardown of volumes (wipe): as persistent as cleanup, as patient as `moving`. A wipe of a
 * large volume takes hours; each attempt goes on from the offset the last one heartbeated
 * (test/chaos/wipe-resume.test.ts runs one through attempts of 6 s), so the bound is per
 * attempt and generous, and the heartbeat timeout still notices a lost worker within a minute.
 */
export const wipe = proxyActivities<Activities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
