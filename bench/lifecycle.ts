// bench/lifecycle: whole VM lifecycles (create, running, decommission) through the API on a
// local Temporal dev server, the real worker and PostgreSQL, hosts simulated by libvirt's test
// driver in the worker's process; against the Temporal floor measured in the same run.
//
//   npx tsx bench/lifecycle.ts [--vms 1000] [--hosts 50] [--concurrency 200]
//
// Figures are printed, never asserted. TEMPORAL_ADDRESS names a server to use instead of a
// dev server of the bench's own; DATABASE_URL the PostgreSQL (a scratch database is dropped).
// CPU per lifecycle (this process, the dev server, PostgreSQL) is printed beside the rates: it
// shows where the time goes and how far from the target the run is (2 cores at 30/s leave 66
// ms a lifecycle); on a shared machine it too rises and falls with the other tenants' load.
import { localTemporal } from '../test/support/local-temporal.ts';
import { tokenCaller } from '../test/support/token-caller.ts';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../config.ts';
import { writeSimulatedHost } from '../drivers/libvirt/simulated-host.ts';
import type { Sql } from '../registry/db.ts';
import { connectClient, startWorker } from '../workers/compose.ts';
import {
  floorClaimed,
  floorDecommission,
  floorLifecycle,
  type StepKind,
} from './floor-workflow.ts';
import { benchDatabase, cpuPer, cpuTimes, percentile } from './support.ts';

const { values } = parseArgs({
  options: {
    vms: { type: 'string', default: '1000' },
    hosts: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '200' },
  },
});
const VMS = Number(values.vms);
const HOSTS = Number(values.hosts);
const CONCURRENCY = Number(values.concurrency);
const POLL_MS = 25;
// As `npm run worker` would run (VAGOTH_WORKFLOW_THREADS); the floor's worker the same.
const WORKFLOW_THREADS = loadConfig().workflowThreads;

interface Figures {
  seconds: number;
  latencies: number[]; // create call to running, ms
  cpu: string; // CPU per lifecycle, by process
}

/** Runs `lifecycle(i)` for every VM on CONCURRENCY loops; returns wall time and latencies. */
async function drive(lifecycle: (i: number) => Promise<number>): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const cpu0 = cpuTimes();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < VMS; i = next++) latencies.push(await lifecycle(i));
    }),
  );
  return {
    seconds: (performance.now() - t0) / 1000,
    latencies: latencies.sort((a, b) => a - b),
    cpu: cpuPer(cpu0, cpuTimes(), VMS),
  };
}

/**
 * One read per tick of every VM's state, instead of a poll per VM: waiters learn when their
 * VM is running or gone within POLL_MS, whatever workflow shape runs it.
 */
function watch(read: () => Promise<Map<string, string>>) {
  const waiters = new Map<string, { want: 'running' | 'gone'; resolve(): void }>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (waiters.size > 0) {
        const states = await read();
        for (const [name, w] of waiters) {
          const state = states.get(name);
          if (state === 'failed') throw new Error(`vm ${name} failed`);
          if (
            (w.want === 'gone' && (state === undefined || state === 'gone')) ||
            state === w.want
          ) {
            waiters.delete(name);
            w.resolve();
          }
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  return {
    until: (name: string, want: 'running' | 'gone') =>
      new Promise<void>((resolve) => waiters.set(name, { want, resolve })),
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const registryWatch = (sql: Sql) =>
  watch(async () => {
    const rows = await sql<{ name: string; state: string }[]>`
      SELECT name, metadata->>'state' AS state FROM nodes WHERE type = 'vm'`;
    return new Map(rows.map((r) => [r.name, r.state]));
  });

async function vagoth(
  address: string,
  temporal: Client,
): Promise<Figures & { steps: Steps; events: number }> {
  const db = await benchDatabase(40);
  const hostsDir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-hosts-'));
  const taskQueue = `bench-${randomUUID()}`;
  const { drivers } = loadConfig();
  const worker = await startWorker({
    sql: db.sql,
    address,
    namespace: 'default',
    taskQueue,
    workflowThreads: WORKFLOW_THREADS,
    // Its hosts are simulated ones it writes itself.
    drivers: {
      ...drivers,
      hostUris: { ...drivers.hostUris, simulatedHosts: true, simulatedHostDirs: [hostsDir] },
    },
  });
  // Every call carries an admin token and is checked, as over HTTP.
  const { api } = await tokenCaller({
    sql: db.sql,
    temporal,
    taskQueue,
    namespace: 'default',
    temporalUiUrl: 'http://ui',
    placementPolicy: 'spread',
  });
  const watch = registryWatch(db.sql);
  try {
    await api.networks.create({ name: 'default', cidr: '10.0.0.0/16', gateway: '10.0.0.1' });
    for (let i = 1; i <= HOSTS; i++) {
      const uri = await writeSimulatedHost(hostsDir, `sim-${i}`, { cpus: 16, memoryMiB: 65536 });
      await api.hosts.register({ name: `sim-${i}`, driver: 'libvirt', uri, cpuRatio: 4 });
    }
    let sample: { id: string; runId: string } | null = null;
    const figures = await drive(async (i) => {
      const name = `bench-${i}`;
      const t0 = performance.now();
      const { operation } = await api.vms.create({
        name,
        vcpus: 1,
        memoryMiB: 256,
        nics: [{ network: 'default' }],
      });
      sample ??= operation;
      await watch.until(name, 'running');
      const latency = performance.now() - t0;
      await api.vms.decommission({ name });
      await watch.until(name, 'gone');
      return latency;
    });
    return {
      ...figures,
      steps: await activitySteps(temporal, sample!),
      events: await eventCount(temporal, sample!.id),
    };
  } finally {
    await watch.stop();
    await worker.shutdown();
    await db.drop();
    await rm(hostsDir, { recursive: true, force: true });
  }
}

type Steps = [StepKind[], StepKind[]];

/** The events of one lifecycle's workflow history: what the server stores and indexes. */
async function eventCount(temporal: Client, workflowId: string): Promise<number> {
  return (await temporal.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0;
}

/**
 * The steps one real lifecycle ran, before and after its decommission, each a local activity
 * (a marker) or an ordinary one: the floor's shape.
 */
async function activitySteps(temporal: Client, op: { id: string; runId: string }): Promise<Steps> {
  const events = (await temporal.workflow.getHandle(op.id).fetchHistory()).events ?? [];
  const steps: Steps = [[], []];
  let phase = 0;
  for (const e of events) {
    if (
      e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ===
      'decommission'
    )
      phase = 1;
    if (e.activityTaskScheduledEventAttributes) steps[phase]!.push('activity');
    if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
      steps[phase]!.push('local');
  }
  return steps;
}

async function floor(
  address: string,
  temporal: Client,
  steps: Steps,
): Promise<Figures & { events: number }> {
  const taskQueue = `floor-${randomUUID()}`;
  const states = new Map<string, string>();
  const floorWatch = watch(async () => states);
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue,
    workflowThreadPoolSize: WORKFLOW_THREADS,
    workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
    activities: {
      noop: async (_step: number, mark?: { id: string; state: string }) => {
        if (mark) states.set(mark.id, mark.state);
      },
    },
  });
  const running = worker.run();
  try {
    const figures = await drive(async (i) => {
      const t0 = performance.now();
      const workflowId = `floor-${taskQueue}-${i}`;
      const start = new WithStartWorkflowOperation(floorLifecycle, {
        args: [{ createSteps: steps[0], decommissionSteps: steps[1] }],
        taskQueue,
        workflowId,
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      await temporal.workflow.executeUpdateWithStart(floorClaimed, {
        startWorkflowOperation: start,
      });
      await floorWatch.until(workflowId, 'running');
      const latency = performance.now() - t0;
      await temporal.workflow
        .getHandle(workflowId)
        .startUpdate(floorDecommission, { waitForStage: 'ACCEPTED' });
      await floorWatch.until(workflowId, 'gone');
      return latency;
    });
    return { ...figures, events: await eventCount(temporal, `floor-${taskQueue}-0`) };
  } finally {
    await floorWatch.stop();
    worker.shutdown();
    await running;
    await connection.close();
  }
}

/**
 * Runs a phase on a dev server of its own, so that each starts on an empty one: the dev
 * server keeps finished workflows in memory, and the more it holds the more CPU each new one
 * costs it (four floor runs in a row on one server: 2 to 5 ms more a lifecycle for each
 * 1,000 lifecycles it held), which would charge the phase that runs second. With
 * TEMPORAL_ADDRESS both phases share that server.
 */
async function onServer<T>(phase: (address: string, temporal: Client) => Promise<T>): Promise<T> {
  const env = await localTemporal({ format: 'pretty', level: 'error' });
  const temporal = await connectClient(env.address, 'default');
  try {
    return await phase(env.address, temporal);
  } finally {
    await temporal.connection.close();
    await env.teardown();
  }
}

Runtime.install({ logger: new DefaultLogger('ERROR') });
console.log(
  `${VMS} VM lifecycles on ${HOSTS} simulated hosts, ${CONCURRENCY} at a time, ${WORKFLOW_THREADS} workflow threads`,
);
const real = await onServer(vagoth);
const base = await onServer((address, temporal) => floor(address, temporal, real.steps));
const rate = (f: Figures) => VMS / f.seconds;
const row = (label: string, f: Figures) =>
  console.log(
    `${label.padEnd(10)} ${rate(f).toFixed(1).padStart(7)} lifecycles/s   create->running p50 ${percentile(f.latencies, 50).toFixed(0)} ms, p99 ${percentile(f.latencies, 99).toFixed(0)} ms`,
  );
row('vagoth', real);
row('floor', base);
console.log(`CPU per lifecycle: vagoth ${real.cpu}`);
console.log(`                   floor  ${base.cpu}`);
const shape = (kinds: StepKind[]) =>
  `${kinds.filter((k) => k === 'local').length} local + ${kinds.filter((k) => k === 'activity').length} ordinary`;
console.log(
  `activities per lifecycle: create ${shape(real.steps[0])}, decommission ${shape(real.steps[1])} (the floor runs as many no-ops, of the same kinds)`,
);
console.log(`events per lifecycle: vagoth ${real.events}, floor ${base.events}`);
const ratio = base.seconds > 0 ? real.seconds / base.seconds : NaN;
console.log(`throughput: ${rate(real).toFixed(1)} lifecycles/s (target >= 30)`);
console.log(`vagoth / floor (wall time): ${ratio.toFixed(2)}x (target <= 1.5x)`);
