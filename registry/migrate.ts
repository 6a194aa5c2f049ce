import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './db.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
// Any constant: serialises concurrent start-ups (API and worker) migrating one database.
const LOCK_ID = 0x7a90_7401;

/** Applies every numbered migration not yet recorded, each in its own transaction. */
export async function migrate(sql: Sql): Promise<string[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set(
      (await tx`SELECT name FROM schema_migrations`).map((r) => r.name as string),
    );
    for (const file of files) {
      if (done.has(file)) continue;
      const text = await readFile(path.join(migrationsDir, file), 'utf8');
      await tx.savepoint(async (sp) => {
        await sp.unsafe(text);
        await sp`INSERT INTO schema_migrations (name) VALUES (${file})`;
      });
      applied.push(file);
    }
  });
  return applied;
}
