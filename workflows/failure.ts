import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/workflow';

/** The ApplicationFailure behind an activity failure, so its `type` and details reach the caller. */
export function rootFailure(err: unknown): ApplicationFailure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return cause;
  if (cause instanceof CancelledFailure) {
    return ApplicationFailure.create({
      type: 'Cancelled',
      message: 'cancelled',
      nonRetryable: true,
    });
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return ApplicationFailure.create({ type: 'Internal', message, nonRetryable: true });
}
