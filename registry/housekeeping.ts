import type { Sql } from './db.ts';

/**
 * Vacuums host_capacity after every VACUUM_EVERY placements or releases. Each placement
 * updates the host's row and changes the key of its free-memory index, so none is a HOT
 * update: in a burst, dead row versions pile up (20,000 on 1,000 hosts after 20,000
 * placements, measured) long before autovacuum, a minute apart at best, comes round, and
 * every placement wades through them. The table has a row per host, so vacuuming it takes
 * milliseconds; it runs beside the caller, never in its way. Autovacuum stays the safety net,
 * so a failed run (the pool closing, say) is let go.
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
  sql`VACUUM host_capacity`.catch(() => {}).finally(() => (mine.running = false));
}
