import type postgres from 'postgres';
import type { CloudDriver } from './clouds/driver.ts';
import type { OtherClouds } from './clouds/index.ts';
import { CloudRefusedError, CloudUnreachableError } from './errors.ts';

/**
 * Tokens the service layer minted and no longer needs, to revoke: each is recorded before it is
 * first tried (in the transaction that lets it go, where there is one), and leaves the record
 * only once its cloud took the revoke or said the token was dead already. One a cloud did not
 * take is tried again by the worker's sweep, later each time: a cloud that is down, or a
 * worker or an API process stopped halfway, leaves no live token behind for good.
 */
export interface Revocation {
  /** The other cloud it was minted in, by name; null: the service layer's own. */
  cloud: string | null;
  token: string;
  tokenId: string;
  /** Another cloud's URL when it was minted: the revoke goes nowhere else. */
  url?: string | null;
}

/** What revokes: each token is revoked with itself, in its own cloud. */
export interface Revoker {
  sql: postgres.Sql;
  cloudFor(token: string): CloudDriver;
  clouds?: OtherClouds;
}

type Queryable = postgres.Sql | postgres.TransactionSql;

interface Row {
  id: string;
  /** '': the service layer's own. */
  cloud: string;
  token: string;
  token_id: string;
  url: string | null;
  attempts: number;
}

/** Records tokens to revoke, for `service` (`project/name`); answers their records' ids. */
export async function queueRevocations(
  sql: Queryable,
  service: string,
  tokens: readonly Revocation[],
): Promise<string[]> {
  if (tokens.length === 0) return [];
  const rows = tokens.map((t) => ({
    cloud: t.cloud ?? '',
    token: t.token,
    token_id: t.tokenId,
    url: t.url ?? null,
    service,
  }));
  // A token queued before (a step run again) keeps its one record.
  const queued = await sql<{ id: string }[]>`
    INSERT INTO services.revocations ${sql(rows)}
    ON CONFLICT (cloud, token_id) DO UPDATE SET cloud = excluded.cloud
    RETURNING id`;
  return queued.map((r) => r.id);
}

/**
 * A token just minted is recorded at once, its first try held back 15 minutes: a process
 * stopped before the transaction that stores the token leaves it to the sweep, not live for
 * good. That transaction takes the record back (keepMinted).
 */
export async function holdMinted(
  sql: postgres.Sql,
  service: string,
  tokens: readonly Revocation[],
): Promise<void> {
  const ids = await queueRevocations(sql, service, tokens);
  await sql`
    UPDATE services.revocations SET next_at = now() + interval '15 minutes'
    WHERE id = ANY(${ids}::bigint[]) AND attempts = 0`;
}

/**
 * In the transaction that stores minted tokens: their records go from the queue. False when a
 * sweep tried one already (it may be revoked): the caller's transaction must not store it.
 */
export async function keepMinted(
  tx: Queryable,
  tokens: readonly { cloud: string | null; tokenId: string }[],
): Promise<boolean> {
  for (const t of tokens) {
    const gone = await tx<{ attempts: number }[]>`
      DELETE FROM services.revocations WHERE cloud = ${t.cloud ?? ''} AND token_id = ${t.tokenId}
      RETURNING attempts`;
    if (gone.some((g) => g.attempts > 0)) return false;
  }
  return true;
}

/** Why a try failed, in the operator's words: never what the cloud said. */
function whyNot(err: unknown): string {
  if (err instanceof CloudUnreachableError) return 'the cloud did not answer';
  if (err instanceof CloudRefusedError) {
    // The code is the cloud's too: only an API code's shape is kept.
    return /^[A-Z_]{1,32}$/.test(err.code)
      ? `the cloud refused it (${err.code})`
      : 'the cloud refused it';
  }
  return 'it failed';
}

/** One try: true once the token is revoked, or its cloud no longer knows it. */
async function tryRevoke(deps: Revoker, r: Row): Promise<true | string> {
  const driver =
    r.cloud === '' ? deps.cloudFor(r.token) : deps.clouds?.driver(r.cloud, r.token, r.url);
  if (!driver) {
    return `cloud ${r.cloud} is not among the clouds allowed here, or not at the URL that minted it`;
  }
  try {
    await driver.revokeToken(r.token_id);
    return true;
  } catch (err) {
    if (err instanceof CloudRefusedError && err.code === 'UNAUTHORIZED') return true;
    return whyNot(err);
  }
}

/**
 * Tries the records `claim` selects, each pushed back first (so a sweep beside this one does
 * not try it too); those that went through leave the queue. Answers how many did and how many
 * are left for a later sweep.
 */
async function tryClaimed(deps: Revoker, claim: postgres.PendingQuery<Row[]>) {
  const claimed = await claim;
  let revoked = 0;
  for (const r of claimed) {
    const outcome = await tryRevoke(deps, r);
    if (outcome === true) {
      await deps.sql`DELETE FROM services.revocations WHERE id = ${r.id}`;
      revoked++;
    } else {
      await deps.sql`UPDATE services.revocations SET last_error = ${outcome} WHERE id = ${r.id}`;
    }
  }
  return { revoked, left: claimed.length - revoked };
}

// After a try, the next one waits 30 s, doubled with each try, at most an hour.
const claimed = (sql: postgres.Sql, which: postgres.PendingQuery<postgres.Row[]>) => sql<Row[]>`
  UPDATE services.revocations SET attempts = attempts + 1,
    next_at = now() + make_interval(secs => least(3600, 30 * power(2, least(attempts, 7))))
  WHERE id IN (SELECT id FROM services.revocations WHERE ${which}
               ORDER BY next_at LIMIT 100 FOR UPDATE SKIP LOCKED)
  RETURNING id, cloud, token, token_id, url, attempts`;

/** Tries the queued tokens `ids` now (as they are let go); those that fail wait for a sweep. */
export function revokeQueued(deps: Revoker, ids: readonly string[]) {
  if (ids.length === 0) return Promise.resolve({ revoked: 0, left: 0 });
  return tryClaimed(deps, claimed(deps.sql, deps.sql`id = ANY(${ids as string[]}::bigint[])`));
}

/** Records tokens to revoke and tries them at once. */
export async function revokeTokens(deps: Revoker, service: string, tokens: readonly Revocation[]) {
  return revokeQueued(deps, await queueRevocations(deps.sql, service, tokens));
}

/** One sweep: every record whose next try is due (at most 100), tried. */
export function sweepRevocations(deps: Revoker) {
  return tryClaimed(deps, claimed(deps.sql, deps.sql`next_at <= now()`));
}

/** The worker's sweep, every `everyMs` (and once at start), until stopped. */
export function startRevocationSweep(deps: Revoker, everyMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let wake: () => void = () => {};
  const loop = (async () => {
    while (!stopped) {
      try {
        const { left } = await sweepRevocations(deps);
        if (left > 0) console.warn(`services: ${left} token revocation(s) to try again later`);
      } catch (err) {
        console.warn(`services: token revocation sweep failed: ${(err as Error).message}`);
      }
      // Stopped during that sweep: its wake came before this wait, which would see none.
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs).unref();
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await loop;
    },
  };
}
