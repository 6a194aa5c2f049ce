/** The cloud's domain errors; cloud/api/errors.ts maps each to one API code. */

export class CloudNotFoundError extends Error {
  override name = 'CloudNotFoundError';
  constructor(
    readonly kind: string,
    readonly key: string,
  ) {
    super(`${kind} ${JSON.stringify(key)} not found`);
  }
}

/** A name or key another record holds. */
export class CloudConflictError extends Error {
  override name = 'CloudConflictError';
}

/** Well-formed, but not now: a project with instances, a cluster with instances, a quota. */
export class CloudPreconditionError extends Error {
  override name = 'CloudPreconditionError';
}

/** Input the cloud's records refuse: the field and why. */
export class CloudInputError extends Error {
  override name = 'CloudInputError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A cluster that did not answer, or answered with something other than its API. */
export class ClusterUnreachableError extends Error {
  override name = 'ClusterUnreachableError';
  constructor(
    readonly cluster: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cluster ${cluster} did not answer: ${reason}`, options);
  }
}

/** A unique violation of postgres.js, as the constraint it broke. */
export function uniqueViolation(err: unknown): string | null {
  const e = err as { code?: string; constraint_name?: string };
  return e?.code === '23505' ? (e.constraint_name ?? 'unique') : null;
}

/** A foreign-key violation of postgres.js: what it referred to went meanwhile. */
export function foreignKeyViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23503';
}
