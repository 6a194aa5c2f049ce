import { randomUUID } from 'node:crypto';
import { loadConfig } from '../config.ts';
import { connect, type Sql } from '../registry/db.ts';
import { migrate } from '../registry/migrate.ts';

/** A fresh, migrated database of the bench's own on the configured server; dropped by `drop`. */
export async function benchDatabase(max = 20): Promise<{ sql: Sql; drop(): Promise<void> }> {
  const adminUrl = loadConfig().databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `vagoth_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = connect(url.toString(), { max });
  await migrate(sql);
  return {
    sql,
    async drop() {
      await sql.end();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Registers `count` hosts straight into the registry (no driver): the allocator's view only. */
export async function seedHosts(
  sql: Sql,
  count: number,
  size: { cpus: number; memoryMiB: number; cpuRatio: number },
) {
  const names = Array.from({ length: count }, (_, i) => `hv-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < names.length; i += 1000) {
    const batch = names.slice(i, i + 1000);
    await sql`
      WITH n AS (
        INSERT INTO nodes (name, type, definition)
        SELECT x, 'host', '{"driver":"libvirt","uri":"test:///bench"}'::jsonb FROM unnest(${batch}::text[]) x
        RETURNING id)
      INSERT INTO host_capacity (host_id, vcpus, memory_mib, cpu_ratio)
      SELECT id, ${size.cpus}, ${size.memoryMiB}, ${size.cpuRatio} FROM n`;
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Runs `work(i)` for i in 0..total-1 on `clients` concurrent loops; returns each call's ms. */
export async function runClients(
  total: number,
  clients: number,
  work: (i: number) => Promise<void>,
): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t0 = performance.now();
        await work(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

/**
 * Runs `work(i)` for i in 0..total-1 offered at `perSecond` in all, from `clients` concurrent
 * loops: call i is due at start + i / perSecond. Each latency counts from when the call was
 * due, not from when a free loop got to it, so a server that falls behind shows it (no
 * coordinated omission). Returns each call's ms, sorted.
 */
export async function runPaced(
  total: number,
  clients: number,
  perSecond: number,
  work: (i: number) => Promise<void>,
): Promise<number[]> {
  const latencies: number[] = [];
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < total; i = next++) {
        const due = start + (i * 1000) / perSecond;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await work(i);
        latencies.push(performance.now() - due);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}
