// bench/placement: how fast vagoth claims and places VMs on the real PostgreSQL.
//
//   npx tsx bench/placement.ts [--hosts 1000] [--vms 20000] [--clients 50]
//
// A placement is what the create workflow's first two activities do: claim the VM's name, an
// address from a pool and a MAC in one transaction, then pick a host and claim room on it.
// Figures are printed, never asserted; ratios compare against baselines run in this process.
import { parseArgs } from 'node:util';
import { placeVm } from '../registry/allocate.ts';
import type { Sql } from '../registry/db.ts';
import { createNetwork } from '../registry/networks.ts';
import { claimVm } from '../registry/claim-vm.ts';
import { benchDatabase, percentile, runClients, seedHosts } from './support.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    vms: { type: 'string', default: '20000' },
    clients: { type: 'string', default: '50' },
  },
});
const HOSTS = Number(values.hosts);
const VMS = Number(values.vms);
const CLIENTS = Number(values.clients);
const operation = { kind: 'create', workflowId: 'bench', runId: 'bench' };
const HOST_SIZE = { cpus: 16, memoryMiB: 64 * 1024, cpuRatio: 4 };

async function place(sql: Sql, name: string): Promise<number> {
  const request = {
    name,
    vcpus: 1,
    memoryMiB: 1024,
    diskGiB: 0,
    nics: [{ network: 'pool' }],
    tags: {},
    placement: {},
  };
  const vm = await claimVm(sql, request, operation);
  return (await placeVm(sql, vm, 'spread')).retries;
}

async function withHosts<T>(hosts: number, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const db = await benchDatabase(Math.min(CLIENTS, 40));
  try {
    await seedHosts(db.sql, hosts, HOST_SIZE);
    await createNetwork(db.sql, { name: 'pool', cidr: '10.0.0.0/14' });
    // As autovacuum would after a bulk registration: the planner needs statistics.
    await db.sql`ANALYZE`;
    return await fn(db.sql);
  } finally {
    await db.drop();
  }
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

// 1. Throughput and latency under concurrency, then the invariants.
await withHosts(HOSTS, async (sql) => {
  // Baseline: the same clients inserting bare VM rows (no keys, no placement): the database floor.
  const floor = await runClients(VMS, CLIENTS, async (i) => {
    await sql`INSERT INTO nodes (name, type) VALUES (${`floor-${i}`}, 'bare')`;
  });
  const floorSeconds = floor.reduce((a, b) => a + b, 0) / CLIENTS / 1000;

  let retries = 0;
  const t0 = performance.now();
  const latencies = await runClients(VMS, CLIENTS, async (i) => {
    retries += await place(sql, `vm-${i}`);
  });
  const seconds = (performance.now() - t0) / 1000;

  const [over] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM host_capacity c
    WHERE c.alloc_vcpus <> (SELECT COALESCE(sum(vcpus), 0) FROM allocations a WHERE a.host_id = c.host_id)
       OR c.alloc_vcpus > floor(c.vcpus * c.cpu_ratio) OR c.alloc_memory_mib > c.memory_mib`;
  const [dupIps] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM (SELECT definition->'nics'->0->>'ip' AS ip FROM nodes WHERE type = 'vm'
                                    GROUP BY 1 HAVING count(*) > 1) d`;
  const [placed] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM allocations`;
  console.log(`placement: ${HOSTS} hosts, ${VMS} VMs, ${CLIENTS} concurrent clients`);
  console.log(`  placements/s        ${(VMS / seconds).toFixed(0)}  (target >= 500)`);
  console.log(
    `  latency p50 / p99   ${fmt(percentile(latencies, 50))} / ${fmt(percentile(latencies, 99))}  (target p99 < 50 ms)`,
  );
  console.log(`  claim retries       ${retries}`);
  console.log(`  placed              ${placed!.n} of ${VMS}`);
  console.log(`  over-committed hosts ${over!.n}, duplicate addresses ${dupIps!.n}  (target 0, 0)`);
  console.log(
    `  vs bare inserts     ${(seconds / floorSeconds).toFixed(1)}x the time of ${VMS} plain row inserts`,
  );
});

// 2. Scaling: one client, the same number of placements, with few and with many hosts.
async function meanPlacement(hosts: number, n: number): Promise<number> {
  return withHosts(hosts, async (sql) => {
    await runClients(50, 1, async (i) => void (await place(sql, `warm-${i}`)));
    const latencies = await runClients(n, 1, async (i) => void (await place(sql, `vm-${i}`)));
    return latencies.reduce((a, b) => a + b, 0) / latencies.length;
  });
}
const small = await meanPlacement(100, 500);
const large = await meanPlacement(10_000, 500);
console.log(`scaling: one placement with 100 hosts ${fmt(small)}, with 10000 hosts ${fmt(large)}`);
console.log(`  ratio 10000/100 hosts ${(large / small).toFixed(2)}x  (target <= 2x)`);
