// bench/api: what the cloud costs on its reads. `instances.get` and `instances.list` through
// HTTP with a member's cloud token, each next to the same VMs read on the cluster's API over
// HTTP with a cluster token (no cloud in between) and to a bare SELECT of the cloud's row(s)
// on the cloud's own pool; two clusters, the local one (driver `local`, in this process) and
// a remote one (driver `vagoth`, `npm run api` in a process of its own).
//
//   BENCH_INSTANCES=100000 BENCH_PROJECTS=1000 npm run bench:api
//
// Settings (environment): BENCH_INSTANCES (100000) in BENCH_PROJECTS (1000), split between the
// clusters; BENCH_CLIENTS (50) concurrent clients for req/s; BENCH_ROUNDS (3) interleaved
// rounds, each of BENCH_REQUESTS (400) calls by one client for p50/p99 (BENCH_LIST_REQUESTS,
// 40, for list) and BENCH_LOADED (2000) calls by the clients for req/s. A small smoke run:
// BENCH_INSTANCES=2000 BENCH_PROJECTS=20 BENCH_ROUNDS=1 BENCH_REQUESTS=50 BENCH_LOADED=200.
//
// Figures are printed, never asserted; the data is written with SQL in bulk (bench/api-seed.ts)
// as the create paths would have left it, and scratch databases are dropped.
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { vmNameOf } from '../cloud/store/instances.ts';
import type { Sql } from '../registry/db.ts';
import { cloudClient } from '../test/support/cloud-client.ts';
import { measure, p50, p99, printTable, rate, trpc, type Comparison } from './api-measure.ts';
import {
  instanceName,
  onLocal,
  perProject,
  projectName,
  seedCloud,
  seedRegistry,
  type Scale,
} from './api-seed.ts';
import { startLocal, startRemote, startTemporal } from './api-stack.ts';
import { benchDatabase, setting } from './support.ts';

const scale: Scale = {
  instances: setting('BENCH_INSTANCES', 100_000),
  projects: setting('BENCH_PROJECTS', 1_000),
};
const CLIENTS = setting('BENCH_CLIENTS', 50);
const ROUNDS = setting('BENCH_ROUNDS', 3);
const REQUESTS = setting('BENCH_REQUESTS', 400);
const LIST_REQUESTS = setting('BENCH_LIST_REQUESTS', 40);
const LOADED = setting('BENCH_LOADED', 2_000);
// As `npm run api` opens the registry (registry/db.ts's default pool).
const POOL = 10;

/** The member's project (one in the middle) and its instances on each cluster. */
function memberProject() {
  const per = perProject(scale);
  const p = Math.floor(scale.projects / 2);
  const ks = Array.from({ length: per }, (_, j) => p * per + j).filter((k) => k < scale.instances);
  const at = (local: boolean) => ks.filter((k) => onLocal(k) === local).map((k) => k - p * per);
  const local = at(true).map(instanceName);
  const remote = at(false).map(instanceName);
  if (local.length === 0 || remote.length === 0)
    throw new Error('the member project needs instances on both clusters: raise BENCH_INSTANCES');
  return { project: projectName(p), local, remote, all: ks.map((k) => instanceName(k - p * per)) };
}

/** Bare SELECTs of the cloud's instance rows by project and name, on `sql`. */
const bareSelect = {
  one: (sql: Sql, project: string, name: string) => sql`
    SELECT i.id, i.name, i.vm_name, i.cluster_id, i.vcpus, i.memory_mib, i.disk_gib, i.ips,
           i.image, i.created_at
    FROM cloud.instances i JOIN cloud.projects p ON p.id = i.project_id
    WHERE p.name = ${project} AND i.name = ${name} AND i.deleted_at IS NULL`,
  page: (sql: Sql, project: string) => sql`
    SELECT i.id, i.name, i.vm_name, i.cluster_id, i.vcpus, i.memory_mib, i.disk_gib, i.ips,
           i.image, i.created_at
    FROM cloud.instances i JOIN cloud.projects p ON p.id = i.project_id
    WHERE p.name = ${project} AND i.deleted_at IS NULL ORDER BY i.name LIMIT 100`,
};

type Endpoint = ReturnType<typeof trpc>;

function comparisons(
  sql: Sql,
  cloud: Endpoint,
  clusters: { local: Endpoint; remote: Endpoint },
): Comparison[] {
  const m = memberProject();
  const getOn = (side: 'local' | 'remote'): Comparison => {
    const names = m[side];
    const name = (i: number) => names[i % names.length]!;
    return {
      label: `instances.get (${side} cluster)`,
      requests: REQUESTS,
      loaded: LOADED,
      calls: {
        cloud: (i) => cloud.query('instances.get', { project: m.project, name: name(i) }),
        cluster: (i) => clusters[side].query('vms.get', { name: vmNameOf(m.project, name(i)) }),
        select: (i) => bareSelect.one(sql, m.project, name(i)),
      },
    };
  };
  // The page's VMs as the cluster API answers them by name: one vms.list per cluster, both
  // at once.
  const pageOn = (side: 'local' | 'remote') => {
    const names = m.all.slice(0, 100).filter((n) => m[side].includes(n));
    return clusters[side].query('vms.list', { names: names.map((n) => vmNameOf(m.project, n)) });
  };
  return [
    getOn('local'),
    getOn('remote'),
    {
      label: `instances.list (${Math.min(100, m.all.length)} of a project)`,
      note: 'vms.list { names } of the same VMs, one call per cluster, both at once',
      requests: LIST_REQUESTS,
      loaded: 0,
      calls: {
        cloud: () => cloud.query('instances.list', { project: m.project, limit: 100 }),
        cluster: () => Promise.all([pageOn('local'), pageOn('remote')]),
        select: () => bareSelect.page(sql, m.project),
      },
    },
  ];
}

/** The seed is what the cloud expects: the member's instances are running on both clusters. */
async function checkSeed(cloud: Endpoint, m: ReturnType<typeof memberProject>) {
  for (const name of [m.local[0]!, m.remote[0]!]) {
    const got = (await cloud.query('instances.get', { project: m.project, name })) as {
      state: string;
    };
    if (got.state !== 'running') throw new Error(`instance ${name} is ${got.state}, not running`);
  }
}

/** The cluster's own list, for scale: it answers every VM, with no page or filter. */
async function clusterList(cluster: Endpoint) {
  const t0 = performance.now();
  const vms = (await cluster.query('vms.list', {})) as unknown[];
  const ms = performance.now() - t0;
  const mib = JSON.stringify(vms).length / 1024 ** 2;
  console.log(
    `the local cluster's vms.list (no page, no filter): ${vms.length} VMs, ${mib.toFixed(1)} MiB, ${ms.toFixed(0)} ms`,
  );
}

Runtime.install({ logger: new DefaultLogger('ERROR') });
const temporal = await startTemporal();
const localDb = await benchDatabase(POOL);
const remoteDb = await benchDatabase(4);
const stops: Array<() => Promise<void>> = [
  () => remoteDb.drop(),
  () => localDb.drop(),
  () => temporal.close(),
];
try {
  const t0 = performance.now();
  await Promise.all([
    seedRegistry(localDb.sql, scale, 'local'),
    seedRegistry(remoteDb.sql, scale, 'remote'),
  ]);
  const remote = await startRemote(remoteDb.sql, temporal.address);
  stops.unshift(remote.stop);
  const local = await startLocal(localDb.sql, temporal.client, [new URL(remote.url).origin]);
  stops.unshift(local.close);
  const admin = cloudClient(local.cloud.url, local.cloud.adminToken);
  const { url, token: clusterToken } = remote;
  await admin.clusters.register.mutate({
    name: 'remote',
    driver: 'vagoth',
    url,
    token: clusterToken,
  });
  const ids = Object.fromEntries(
    (await admin.clusters.list.query()).map((c) => [c.name, c.id] as const),
  );
  await seedCloud(localDb.sql, scale, { local: ids.local!, remote: ids.remote! });
  const { project } = memberProject();
  await admin.users.create.mutate({ name: 'member' });
  await admin.projects.addMember.mutate({ project, user: 'member', role: 'member' });
  const { token } = await admin.tokens.create.mutate({ name: 'bench', user: 'member' });
  console.log(
    `${scale.instances} instances in ${scale.projects} projects over 2 clusters (seeded in ${((performance.now() - t0) / 1000).toFixed(0)} s); member of ${project}`,
  );
  console.log(
    `${ROUNDS} rounds, interleaved; p50/p99 of ${REQUESTS} calls by 1 client (list: ${LIST_REQUESTS}) a round, req/s of ${LOADED} calls by ${CLIENTS} clients; HTTP by fetch on both sides`,
  );
  const cloud = trpc(local.cloud.url, token);
  const clusters = {
    local: trpc(local.cluster.url, local.cluster.token),
    remote: trpc(remote.url, remote.token),
  };
  await checkSeed(cloud, memberProject());
  await clusterList(clusters.local);
  const list = comparisons(localDb.sql, cloud, clusters);
  const figures = await measure(list, { rounds: ROUNDS, clients: CLIENTS });
  printTable(list, figures, CLIENTS);
  for (const side of ['local', 'remote'] as const) {
    const f = figures.get(`instances.get (${side} cluster)`)!;
    const cost = rate(f.cluster) / rate(f.cloud);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(
      `goal, get on the ${side} cluster: cloud/cluster <= 1.5x (req/s) ${verdict(cost <= 1.5)} (${cost.toFixed(2)}x); p99 < 5 ms ${verdict(p99(f.cloud) < 5)} (${p99(f.cloud).toFixed(2)} ms); >= 2000 req/s ${verdict(rate(f.cloud) >= 2000)} (${rate(f.cloud).toFixed(0)})`,
    );
  }
  const l = figures.get(list[2]!.label)!;
  const listCost = p50(l.cloud) / p50(l.cluster);
  console.log(
    `goal, list: cloud/cluster <= 1.5x (p50) ${listCost <= 1.5 ? 'met' : 'NOT met'} (${listCost.toFixed(2)}x)`,
  );
} finally {
  for (const stop of stops) await stop();
}
