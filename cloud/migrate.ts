import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import { applyMigrations } from '../db/migrate.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
// Not the cluster's: the cloud may share its database, never its lock or its tables.
const LOCK_ID = 0x7a90_7501;

/** Applies the cloud's migrations, in its own schema (`cloud`), recorded there too. */
export function migrateCloud(sql: postgres.Sql): Promise<string[]> {
  return applyMigrations(sql, {
    dir: migrationsDir,
    table: 'cloud.schema_migrations',
    lockId: LOCK_ID,
    prelude: 'CREATE SCHEMA IF NOT EXISTS cloud',
  });
}
