import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
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

/** CPU time (ms) of this process, of the Temporal server it started and of PostgreSQL. */
export interface CpuTimes {
  bench: number;
  temporal: number;
  postgres: number;
}

/**
 * Reads CPU time from /proc: this process (worker, API and client alike), the `temporal`
 * processes among its children and every `postgres` process. Elsewhere than Linux, or for a
 * server not on this machine, a figure stays 0.
 */
export function cpuTimes(): CpuTimes {
  const own = process.cpuUsage();
  const times: CpuTimes = { bench: (own.user + own.system) / 1000, temporal: 0, postgres: 0 };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return times;
  }
  const tickMs = 10; // USER_HZ is 100 on Linux
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(f[11]) + Number(f[12])) * tickMs;
    if (comm === 'temporal' && Number(f[1]) === process.pid) times.temporal += ms;
    else if (comm === 'postgres') times.postgres += ms; // comm is the program, not the title
  }
  return times;
}

/** CPU per unit of work between two readings, as `91.1 ms (bench 45.2, temporal 35.2, postgres 10.8)`. */
export function cpuPer(before: CpuTimes, after: CpuTimes, units: number): string {
  const part = (k: keyof CpuTimes) => (after[k] - before[k]) / units;
  const parts = (['bench', 'temporal', 'postgres'] as const).map((k) => [k, part(k)] as const);
  const total = parts.reduce((sum, [, v]) => sum + v, 0);
  return `${total.toFixed(1)} ms (${parts.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')})`;
}

const MiB = 1024 ** 2;

/**
 * The copy benches' `--mib` (the bytes each round moves, in MiB) and `--rounds`, both whole
 * numbers of at least 1; 1024 and 3 by default.
 */
export function sizeAndRounds(): { size: number; rounds: number } {
  const { values } = parseArgs({
    options: {
      mib: { type: 'string', default: '1024' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const size = Number(values.mib) * MiB;
  const rounds = Number(values.rounds);
  if (!(size > 0) || size % MiB !== 0 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error('--mib and --rounds must be whole numbers >= 1');
  }
  return { size, rounds };
}

/** The middle of `xs` (the upper one of an even count). */
export const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** A whole-number setting of at least 1 from the environment (`SERVICES=10`), else `fallback`. */
export const setting = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1`);
  return value;
};
