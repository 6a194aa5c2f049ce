import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type postgres from 'postgres';

export interface MigrationSet {
  /** A folder of numbered `NNN_*.sql` files, applied in order. */
  dir: string;
  /** The table that records which were applied (schema-qualified where the layer has one). */
  table: string;
  /** An advisory lock: serialises processes that start together on one database. */
  lockId: number;
  /** SQL run first, in the same transaction (a layer's `CREATE SCHEMA IF NOT EXISTS`). */
  prelude?: string;
}

/**
 * Applies every migration of a set not yet recorded, each in a savepoint of one transaction.
 * Each layer (the cluster's registry, the cloud) has its own set, table and lock.
 */
export async function applyMigrations(sql: postgres.Sql, set: MigrationSet): Promise<string[]> {
  const files = (await readdir(set.dir)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${set.lockId})`;
    if (set.prelude) await tx.unsafe(set.prelude);
    await tx.unsafe(`CREATE TABLE IF NOT EXISTS ${set.table} (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await tx.unsafe(`SELECT name FROM ${set.table}`)).map((r) => r.name as string),
    );
    for (const file of files) {
      if (done.has(file)) continue;
      const text = await readFile(path.join(set.dir, file), 'utf8');
      await tx.savepoint(async (sp) => {
        await sp.unsafe(text);
        await sp.unsafe(`INSERT INTO ${set.table} (name) VALUES ($1)`, [file]);
      });
      applied.push(file);
    }
  });
  return applied;
}
