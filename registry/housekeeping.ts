import type { Sql } from './db.ts';

/**
 * Registry housekeeping, every VACUUM_EVERY placements or releases, beside the caller and
 * never in its way.
 *
 * - host_capacity is vacuumed. Each placement updates the host's row and changes the key of
 *   its free-memory index, so none is a HOT update: in a burst, dead row versions pile up
 *   (20,000 on 1,000 hosts after 20,000 placements, measured) long before autovacuum comes
 *   round, and every placement wades through them. The table has a row per host: milliseconds.
 * - The tables a placement writes (nodes, node_keys, allocations) are analyzed and vacuumed
 *   by autovacuum's own rule (50 rows plus 10% of the table changed since the last ANALYZE,
 *   50 plus 20% dead for VACUUM), since bursts outrun autovacuum and a server may run with it
 *   off. Stale statistics are not a small matter: statistics taken when the registry held only
 *   hosts say a VM is rare, and the planner then finds a VM by id by scanning every VM through
 *   the type index (placement went from 0.9 to 7.3 ms after 20,000 VMs, measured).
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
  await sql`VACUUM host_capacity`;
  const due = await sql<{ table: string; analyze: boolean; vacuum: boolean }[]>`
    SELECT s.relname AS table,
           s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) AS analyze,
           s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0) AS vacuum
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname IN ${sql(KEPT)}`;
  for (const t of due) {
    if (t.vacuum) await sql`VACUUM (ANALYZE) ${sql(t.table)}`;
    else if (t.analyze) await sql`ANALYZE ${sql(t.table)}`;
  }
}
