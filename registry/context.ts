import type postgres from 'postgres';
import type { Queryable, Sql } from './db.ts';

export type TransactionSql = postgres.TransactionSql;

export interface ActorOptions {
  /** Who changes the registry: 'api', 'worker', an operator's name. */
  actor: string | null;
  /**
   * Which operation: activities pass their Temporal workflow id and run id
   * (`<workflowId>/<runId>`), so each recorded change leads back to its workflow.
   */
  operation: string | null;
}

/**
 * Runs `fn` in a transaction whose changes the node event log attributes to `actor` and
 * `operation`. The settings are transaction-local (`set_config(..., true)`), so a pooled
 * connection never carries them into someone else's transaction.
 */
export async function withActor<T>(
  sql: Sql,
  options: ActorOptions,
  fn: (tx: TransactionSql) => Promise<T>,
): Promise<T> {
  const result = await sql.begin(async (tx) => {
    await tx`
      SELECT set_config('vagoth.actor', ${options.actor ?? ''}, true),
             set_config('vagoth.operation', ${options.operation ?? ''}, true)`;
    return fn(tx);
  });
  return result as T;
}

/**
 * Runs `fn` all-or-nothing: in a transaction of its own, or in a savepoint when `sql` already
 * is one (so a query function works alike inside and outside withActor, and a failure inside
 * it leaves the caller's transaction usable).
 */
export async function inTransaction<T>(
  sql: Queryable,
  fn: (tx: TransactionSql) => Promise<T>,
): Promise<T> {
  const result = 'savepoint' in sql ? await sql.savepoint(fn) : await sql.begin(fn);
  return result as T;
}

/**
 * The same settings as withActor, as a one-row source for the FROM (or USING) list of a
 * single statement: that statement's changes are attributed without a transaction of its own.
 */
export function actorSource(sql: Queryable, options: ActorOptions | undefined) {
  return sql`(SELECT set_config('vagoth.actor', ${options?.actor ?? ''}, true) AS actor,
                     set_config('vagoth.operation', ${options?.operation ?? ''}, true) AS operation) AS attributed`;
}
