import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { DriverError } from '../drivers/driver.ts';
import type { FailureType } from '../common/vocabulary.ts';
import { describeDomainError } from '../registry/errors.ts';

/**
 * The failure type of each kind of driver error (the registry's come from
 * describeDomainError): the workflow and the API decide on these types, never on messages.
 */
const BY_KIND = {
  rejected: 'DriverRejected',
  'not-found': 'DomainNotFound',
  'not-ours': 'NotOurs',
  unreachable: 'HostUnreachable',
  timeout: 'HostTimeout',
  unsupported: 'Unsupported',
  unwiped: 'WipeUnverified',
} as const satisfies Record<DriverError['kind'], FailureType>;

/**
 * Turns a domain error, or a PostgreSQL error that would be answered the same way again (a
 * lone surrogate, a broken constraint), into a non-retryable ApplicationFailure (retrying
 * cannot help); an unreachable host stays retryable. Anything else is rethrown untouched, so Temporal retries
 * it with backoff.
 */
export function toFailure(err: unknown): unknown {
  const fail = (type: FailureType, e: Error, details: unknown[] = []) =>
    ApplicationFailure.create({ type, message: e.message, nonRetryable: true, details, cause: e });
  const domain = describeDomainError(err);
  if (domain) {
    return fail(domain.type, err as Error, domain.details === undefined ? [] : [domain.details]);
  }
  if (err instanceof DriverError) return driverFailure(err);
  return err;
}

/**
 * A driver's failure carries its bounded message only: what the hypervisor or agent printed
 * (`detail`, and the raw error behind it) goes to the worker's log, never into the failure,
 * whose whole cause chain callers can read.
 */
function driverFailure(err: DriverError): ApplicationFailure {
  const raw = err.detail ?? (err.cause instanceof Error ? err.cause.message : undefined);
  if (raw !== undefined) log.warn(err.message, { kind: err.kind, code: err.code, detail: raw });
  // Retryable, but typed: once retries run out, the caller still learns what went wrong.
  return ApplicationFailure.create({
    type: BY_KIND[err.kind],
    message: err.message,
    nonRetryable: !err.retryable,
  });
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
