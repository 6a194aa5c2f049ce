import type { Sql } from './db.ts';

/**
 * Registry housekeeping, every VACUUM_EVERY placements or releases, beside the caller and
 * never in its way.
 *
 * - host_capacity is vacuumed. Each placement updates the host's row and changes the key of
 *   its free-memory index, so none is a HOT update: in a burst, dead row versions pile up
 *   (20,000 on 1,000 hosts after 20,000 placements, measured) long before autovacuum comes
 *   round, and every placement wades through them. The table has a row per host: milliseconds.
 * - The tables a placement writes (nodes, node_keys, allocations) are vacuumed by autovacuum's
 *   own rule (50 rows plus 20% of the table dead) and analyzed once as many rows as they hold
 *   have changed since their statistics were taken, since bursts outrun autovacuum and a
 *   server may run with it off. Stale statistics are not a small matter: statistics taken when
 *   the registry held only hosts say a VM is rare, and the planner then finds a VM by id by
 *   scanning every VM through the type index (placement went from 0.9 to 7.3 ms after 20,000
 *   VMs, measured).
 *
 * Both are kept small, because placements running beside them wait (for the WAL, mostly):
 * at 500 placements/s, most placements over 50 ms came in housekeeping rounds, measured.
 * - ANALYZE samples 3,000 rows (statistics target 10) instead of 30,000, throttled as
 *   autovacuum is (vacuum_cost_delay 2 ms): nodes took 110 ms of a core at 20,000 VMs at the
 *   full sample, 16 ms sampled. A small sample still tells the planner how many nodes are VMs
 *   and that ids and names are unique, which is what it needs.
 * - ANALYZE runs only once the table has changed by its own size, not at autovacuum's 10%:
 *   churn short of that changes no plan, and every ANALYZE makes every connection plan its
 *   statements again. At 20,000-30,000 VMs the 10% rule analyzed nodes every other round.
 * - VACUUM runs without parallel workers, which on a small machine only take the cores the
 *   placements need. (VACUUM cannot run in a transaction, so it cannot be throttled without
 *   a connection of its own.)
 *
 * Autovacuum stays the safety net, so a failed run (the pool closing, say) is let go.
 */
const VACUUM_EVERY = 1000;

const counts = new WeakMap<Sql, { changes: number; running: boolean }>();

export function capacityChanged(sql: Sql): void {
  let c = counts.get(sql);
  if (!c) counts.set(sql, (c = { changes: 0, running: false }));
  if (++c.changes < VACUUM_EVERY || c.running) return;
  const mine = c;
  mine.changes = 0;
  mine.running = true;
  housekeep(sql)
    .catch(() => {})
    .finally(() => (mine.running = false));
}

const KEPT = ['nodes', 'node_keys', 'allocations'];

async function housekeep(sql: Sql): Promise<void> {
  await sql`VACUUM (PARALLEL 0) host_capacity`;
  const due = await sql<{ table: string; analyze: boolean; vacuum: boolean }[]>`
    SELECT s.relname AS table,
           s.n_mod_since_analyze > 50 + greatest(c.reltuples, 0) AS analyze,
           s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0) AS vacuum
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname IN ${sql(KEPT)}`;
  for (const t of due) {
    if (t.vacuum) await sql`VACUUM (PARALLEL 0) ${sql(t.table)}`;
    if (t.vacuum || t.analyze) await analyzeSampled(sql, t.table);
  }
}

/** ANALYZE on a sample of 3,000 rows, throttled as autovacuum is. */
async function analyzeSampled(sql: Sql, table: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SET LOCAL default_statistics_target = 10`;
    await tx`SET LOCAL vacuum_cost_delay = 2`;
    await tx`ANALYZE ${tx(table)}`;
  });
}
