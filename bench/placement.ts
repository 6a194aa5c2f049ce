// bench/placement: how fast vagoth claims and places VMs on the real PostgreSQL.
//
//   npx tsx bench/placement.ts [--hosts 1000] [--vms 20000] [--clients 50] [--rate 500]
//
// A placement is what the create workflow's first two activities do: claim the VM's name, an
// address from a pool and a MAC in one transaction, then pick a host and claim room on it.
// Figures are printed, never asserted; ratios compare against baselines run in this process.
//
// Two loads: closed (every client places again as soon as its last placement is done: the
// most the registry does, and a latency that is only clients / throughput, by Little's law)
// and open (the same clients offered `rate` placements a second in all, each latency counted
// from when the placement was due: the latency at that rate).
import { parseArgs } from 'node:util';
import { placeVm } from '../registry/allocate.ts';
import type { Sql } from '../registry/db.ts';
import { createNetwork } from '../registry/networks.ts';
import { claimVm } from '../registry/claim-vm.ts';
import { benchDatabase, percentile, runClients, runPaced, seedHosts } from './support.ts';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    vms: { type: 'string', default: '20000' },
    clients: { type: 'string', default: '50' },
    rate: { type: 'string', default: '500' },
  },
});
const HOSTS = Number(values.hosts);
const VMS = Number(values.vms);
const CLIENTS = Number(values.clients);
const RATE = Number(values.rate);
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
  console.log(`placement: ${HOSTS} hosts, ${VMS} VMs, ${CLIENTS} concurrent clients (closed loop)`);
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

  // The same clients offered RATE placements a second onto the hosts as they now are (half
  // full): latency at that rate, counted from when each placement was due.
  const paced = Math.min(VMS, RATE * 20);
  const p0 = performance.now();
  let pacedRetries = 0;
  const due = await runPaced(paced, CLIENTS, RATE, async (i) => {
    pacedRetries += await place(sql, `paced-${i}`);
  });
  const achieved = paced / ((performance.now() - p0) / 1000);
  console.log(`open loop: ${RATE} placements/s offered by ${CLIENTS} clients, ${paced} VMs`);
  console.log(`  placements/s        ${achieved.toFixed(0)}`);
  console.log(
    `  latency p50 / p99   ${fmt(percentile(due, 50))} / ${fmt(percentile(due, 99))}  (target p99 < 50 ms)`,
  );
  console.log(`  claim retries       ${pacedRetries}`);
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
