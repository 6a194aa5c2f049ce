import { fileURLToPath } from 'node:url';
import { applyMigrations } from '../db/migrate.ts';
import type { Sql } from './db.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
// Any constant: serialises concurrent start-ups (API and worker) migrating one database.
const LOCK_ID = 0x7a90_7401;

/** Applies every numbered migration of the cluster's registry not yet recorded. */
export function migrate(sql: Sql): Promise<string[]> {
  return applyMigrations(sql, { dir: migrationsDir, table: 'schema_migrations', lockId: LOCK_ID });
}
