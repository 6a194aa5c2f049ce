import { ApplicationFailure } from '@temporalio/common';
import { DriverError } from '../drivers/driver.ts';
import {
  InvalidRequestError,
  KeyConflictError,
  NoCapacityError,
  NotFoundError,
  StateConflictError,
} from '../registry/errors.ts';

/** Stable failure types: the workflow and the API decide on these strings, never on messages. */
export const FailureType = {
  KeyConflict: 'KeyConflict',
  NoCapacity: 'NoCapacity',
  NotFound: 'NotFound',
  StateConflict: 'StateConflict',
  DriverRejected: 'DriverRejected',
  DomainNotFound: 'DomainNotFound',
  NotOurs: 'NotOurs',
  HostUnreachable: 'HostUnreachable',
  InvalidRequest: 'InvalidRequest',
} as const;

/**
 * Turns a domain error into a non-retryable ApplicationFailure (retrying cannot help); an
 * unreachable host stays retryable. Anything else is rethrown untouched, so Temporal retries
 * it with backoff.
 */
export function toFailure(err: unknown): unknown {
  const fail = (type: string, e: Error, details: unknown[] = []) =>
    ApplicationFailure.create({ type, message: e.message, nonRetryable: true, details, cause: e });
  if (err instanceof KeyConflictError) {
    return fail(FailureType.KeyConflict, err, [{ key: err.key, holder: err.holder }]);
  }
  if (err instanceof NoCapacityError) return fail(FailureType.NoCapacity, err, [err.reasons]);
  if (err instanceof NotFoundError)
    return fail(FailureType.NotFound, err, [{ kind: err.kind, key: err.key }]);
  if (err instanceof StateConflictError) return fail(FailureType.StateConflict, err);
  if (err instanceof InvalidRequestError) {
    return fail(FailureType.InvalidRequest, err, [{ field: err.field, reason: err.reason }]);
  }
  // Retryable, but typed: once retries run out, the caller still learns what went wrong.
  if (err instanceof DriverError && err.retryable) {
    return ApplicationFailure.create({
      type: FailureType.HostUnreachable,
      message: err.message,
      cause: err,
    });
  }
  if (err instanceof DriverError) {
    const type = {
      rejected: FailureType.DriverRejected,
      'not-found': FailureType.DomainNotFound,
      'not-ours': FailureType.NotOurs,
      unreachable: FailureType.HostUnreachable,
    }[err.kind];
    return fail(type, err);
  }
  return err;
}

type AnyFn = (...args: never[]) => Promise<unknown>;

/** Wraps every activity so domain errors leave it as typed, non-retryable failures. */
export function withFailureTypes<T extends Record<string, AnyFn>>(activities: T): T {
  const wrapped: Record<string, AnyFn> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toFailure(err);
      }
    };
  }
  return wrapped as T;
}
