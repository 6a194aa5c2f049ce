import type postgres from 'postgres';

type Queryable = postgres.Sql | postgres.TransactionSql;

/**
 * One reconcile step of a service at a time, whatever Temporal does: a step takes the
 * service's lease (services.services step_owner/step_until), renews it as it goes, and records
 * members only while it holds it (store.ts asStepOwner).
 */

/** How long a reconcile step's lease lasts without being renewed. */
export const STEP_LEASE_SECONDS = 30;

export class StepLeaseLostError extends Error {
  override name = 'StepLeaseLostError';
  constructor(serviceId: string) {
    super(`another reconcile of service ${serviceId} took over: this one records nothing more`);
  }
}

/**
 * Takes the service's step lease for `owner` (one attempt of a reconcile): false while another
 * step's lease lasts. A retry Temporal starts while an attempt it gave up on still runs (its
 * worker cut off, not dead) so waits its turn; a dead worker's lease lapses.
 */
export async function takeStep(sql: Queryable, serviceId: string, owner: string) {
  const taken = await sql`
    UPDATE services.services
    SET step_owner = ${owner}, step_until = now() + make_interval(secs => ${STEP_LEASE_SECONDS})
    WHERE id = ${serviceId}
      AND (step_owner IS NULL OR step_until < now() OR step_owner = ${owner})`;
  return taken.count > 0;
}

/** Renews the step's lease; throws StepLeaseLostError when it lapsed and another took it. */
export async function renewStep(sql: Queryable, serviceId: string, owner: string) {
  const renewed = await sql`
    UPDATE services.services
    SET step_until = now() + make_interval(secs => ${STEP_LEASE_SECONDS})
    WHERE id = ${serviceId} AND step_owner = ${owner}`;
  if (renewed.count === 0) throw new StepLeaseLostError(serviceId);
}

export async function endStep(sql: Queryable, serviceId: string, owner: string) {
  await sql`
    UPDATE services.services SET step_owner = NULL, step_until = NULL
    WHERE id = ${serviceId} AND step_owner = ${owner}`;
}
