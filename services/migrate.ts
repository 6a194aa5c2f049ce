import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import { applyMigrations } from '../db/migrate.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
// Not the cloud's nor the cluster's: the layers may share a database, never a lock or a table.
const LOCK_ID = 0x7a90_7601;

/** Applies the service layer's migrations, in its own schema (`services`). */
export function migrateServices(sql: postgres.Sql): Promise<string[]> {
  return applyMigrations(sql, {
    dir: migrationsDir,
    table: 'services.schema_migrations',
    lockId: LOCK_ID,
    prelude: 'CREATE SCHEMA IF NOT EXISTS services',
  });
}
