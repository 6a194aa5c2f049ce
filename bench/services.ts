// bench/services: what the service layer costs. SERVICES services of REPLICAS replicas on HOSTS
// simulated hosts, from their services.create calls until every instance runs, against the same
// instances made directly through the cloud's API (instances.create) in the same process: once
// before and once after, on the same hosts emptied between runs. Then TICKS reconcile ticks of
// every service when nothing changed, each one run of every service (their schedules' period is
// a day, so no scheduled tick lands among the triggered ones): wall time, against the Temporal
// floor of the same shape measured in the same process (bench/services-floor.ts), where the
// time goes by the runs' histories (bench/services-latency.ts), Temporal actions per service
// (what a Temporal Cloud user pays for, counted from the server's own records:
// bench/services-actions.ts) and the SQL statements they ran.
//
//   npm run bench:services                            # 100 x 10 on 50 hosts
//   SERVICES=10 REPLICAS=3 HOSTS=5 npm run bench:services   # a quick run
//
// Settings (environment): SERVICES (100), REPLICAS (10), HOSTS (50); CLIENTS (one per service)
// concurrent callers, each making one service's instances one after another in the direct runs,
// as that service's reconcile does; EVERY_SECONDS (86400, the API's longest; its default is 30)
// each service's period; before the ticks each schedule's own interval is taken off, so that
// only the bench's triggers run a reconcile in a measured round (a tick's runs are counted);
// TICKS (3); LIMIT_SECONDS (600) how long a run may take before it is given up; POOL (20) the PostgreSQL pool every layer shares. TEMPORAL_ADDRESS and DATABASE_URL
// as for the other benches (a scratch database is dropped). Figures are printed, never asserted.
import { availableParallelism } from 'node:os';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { actionsPer, noActions, ACTION_KINDS } from './services-actions.ts';
import { declared, deleteServices, direct, type Run, type Shape } from './services-runs.ts';
import { startServicesStack } from './services-stack.ts';
import { startFloor, type FloorTick } from './services-floor.ts';
import { printLatency } from './services-latency.ts';
import { reads, settle, tick, triggersOnly, type Tick } from './services-tick.ts';
import { median, percentile, setting, type CpuTimes } from './support.ts';

const SERVICES = setting('SERVICES', 100);
const shape: Shape = {
  services: SERVICES,
  replicas: setting('REPLICAS', 10),
  clients: setting('CLIENTS', SERVICES),
  everySeconds: setting('EVERY_SECONDS', 86_400),
  limitSeconds: setting('LIMIT_SECONDS', 600),
};
const HOSTS = setting('HOSTS', 50);
const TICKS = setting('TICKS', 3);
const TOTAL = shape.services * shape.replicas;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

function row(label: string, r: Run) {
  if (Number.isNaN(r.seconds)) {
    console.log(
      `${label.padEnd(18)} NEVER: ${r.reached} of its ${TOTAL} instances running after ${shape.limitSeconds} s; ${TOTAL} VMs of the project (others' counted) after ${r.anySeconds.toFixed(1)} s`,
    );
    return;
  }
  console.log(
    `${label.padEnd(18)} ${r.seconds.toFixed(1).padStart(6)} s  ${(TOTAL / r.seconds).toFixed(1).padStart(6)} instances/s  (calls returned after ${r.calledSeconds.toFixed(1)} s; CPU per instance ${r.cpu})`,
  );
}

/** CPU spent in the ticks, and how many of the machine's cores that kept busy meanwhile. */
function cpuDuring(ticks: Tick[]) {
  const part = (k: keyof CpuTimes) =>
    ticks.reduce((sum, t) => sum + t.cpu[1][k] - t.cpu[0][k], 0) / ticks.length;
  const wall = ticks.reduce((sum, t) => sum + t.ms, 0) / ticks.length;
  const parts = (['bench', 'temporal', 'postgres'] as const).map((k) => part(k));
  const total = parts.reduce((a, b) => a + b, 0);
  return `${total.toFixed(0)} ms a tick (bench ${parts[0]!.toFixed(0)}, temporal ${parts[1]!.toFixed(0)}, postgres ${parts[2]!.toFixed(0)}) in ${wall.toFixed(0)} ms: ${(total / wall).toFixed(2)} of ${availableParallelism()} cores busy`;
}

function printTicks(ticks: Tick[], listMs: number[], floors: FloorTick[], starts: FloorTick[]) {
  const walls = ticks.map((t) => t.ms);
  const wall = median(walls);
  const list = (ms: number[]) => ms.map((w) => w.toFixed(0)).join(', ');
  console.log(
    `\nidle tick, ${SERVICES} schedules triggered at once, ${TICKS} rounds: median ${wall.toFixed(0)} ms (${list(walls)}); ${(SERVICES / (wall / 1000)).toFixed(0)} reconciles/s`,
  );
  const floor = median(floors.map((f) => f.ms));
  const bare = median(starts.map((f) => f.ms));
  console.log(
    `Temporal floor, the same shape with a no-op local activity on a worker of Worker.create's defaults, in this process:\n` +
      `  ${SERVICES} schedules triggered at once: median ${floor.toFixed(0)} ms (${list(floors.map((f) => f.ms))}); ` +
      `${SERVICES} bare workflows started at once: median ${bare.toFixed(0)} ms (${list(starts.map((f) => f.ms))})`,
  );
  console.log(
    `idle tick / floor: ${(wall / floor).toFixed(2)}x (over the triggered floor), ${(wall / bare).toFixed(2)}x (over the bare starts)`,
  );
  const spans = ticks.map((t) => (t.count.lastClose - t.count.firstStart).toFixed(0));
  const activity = ticks.flatMap((t) => t.count.activityMs).sort((a, b) => a - b);
  console.log(
    `  from the histories: first run started to last closed ${spans.join(', ')} ms; reconcile activity p50 ${percentile(activity, 50).toFixed(0)} ms, p99 ${percentile(activity, 99).toFixed(0)} ms`,
  );
  console.log(
    `  the reads it cannot skip (one instances.list per service through the cloud's API, all at once): median ${median(listMs).toFixed(0)} ms; tick / reads ${(wall / median(listMs)).toFixed(2)}x`,
  );
  console.log(`  CPU in the idle ticks: ${cpuDuring(ticks)}`);
  console.log(
    `  settled after each tick: ${ticks.map((t) => `${t.settled}/${SERVICES}`).join(', ')}`,
  );
  const extra = ticks.filter((t) => t.count.executions !== SERVICES);
  if (extra.length > 0)
    console.log(
      `  NOT one run per service in ${extra.length} ticks (schedule executions: ${extra.map((t) => t.count.executions).join(', ')}): a scheduled tick or a buffered trigger landed among them`,
    );
  console.log(`goal, idle tick under 2 s: ${verdict(wall < 2000)} (${(wall / 1000).toFixed(2)} s)`);
  console.log("\nwhere the idle tick goes (the services' runs, the floors' beside them):");
  printLatency([
    { label: 'services', ticks: ticks.map((t) => ({ at: t.at, timeline: t.count.timeline })) },
    { label: 'floor (schedules)', ticks: floors },
    { label: 'floor (starts)', ticks: starts },
  ]);

  const actions = noActions();
  for (const t of ticks) for (const k of ACTION_KINDS) actions[k] += t.count.actions[k];
  const runs = ticks.reduce((s, t) => s + t.count.runs, 0);
  const executions = ticks.reduce((s, t) => s + t.count.executions, 0);
  const per = SERVICES * TICKS;
  console.log(
    `\nTemporal actions per service per idle tick: ${actionsPer(actions, per)}; ${(executions / per).toFixed(2)} schedule executions and ${(runs / per).toFixed(2)} runs per service per tick`,
  );
  console.log(
    '  counted as Temporal Cloud bills them (docs.temporal.io/cloud/actions): 2 per schedule execution (the delta of each\n' +
      "  schedule's numActionsTaken), and from the history of every run the schedules started in the tick (their\n" +
      '  recentActions): workflow started 1, each activity attempt 1, local activities 1 per workflow task, timers,\n' +
      '  upserts, signals, updates 1 each, child workflows 2. Queries and heartbeats leave no history (none are made).',
  );

  const statements = new Map<string, number>();
  for (const t of ticks)
    for (const [q, n] of t.statements) statements.set(q, (statements.get(q) ?? 0) + n);
  const total = [...statements.values()].reduce((s, n) => s + n, 0);
  console.log(
    `\nSQL statements per service per idle tick: ${(total / per).toFixed(1)}; the most run:`,
  );
  for (const [q, n] of [...statements].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${(n / per).toFixed(2).padStart(6)}  ${q}`);
  }
}

// The worker's core warns of every workflow task over 5 s, which the runs' load makes many.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
});
const stack = await startServicesStack({
  hosts: HOSTS,
  projects: ['warm', 'direct-a', 'svc', 'direct-b'],
  pool: setting('POOL', 20),
});
try {
  console.log(
    `${SERVICES} services x ${shape.replicas} replicas = ${TOTAL} instances on ${HOSTS} simulated hosts; ${shape.clients} clients; each service every ${shape.everySeconds} s`,
  );
  // Untimed: the first creates on each host and the first calls of each path.
  await direct(stack, 'warm', { ...shape, services: Math.min(HOSTS, SERVICES), replicas: 1 });
  const first = await direct(stack, 'direct-a', shape);
  row('direct (before)', first);
  const services = await declared(stack, 'svc', shape);
  row('services', services);
  if (services.excess > 0)
    console.log(
      `  ${services.excess} VMs beyond the ${TOTAL} asked for were running when the services' own had all started`,
    );

  await triggersOnly(stack, 'svc', shape);
  const unsettled = await settle(stack, 'svc', shape);
  if (unsettled.length > 0)
    console.log(
      `  ${unsettled.length} services never settled before the ticks, e.g. ${unsettled.slice(0, 3).join(' | ')}`,
    );
  const floor = await startFloor({
    address: stack.address,
    client: stack.temporal,
    count: SERVICES,
    everySeconds: shape.everySeconds,
  });
  const ticks: Tick[] = [];
  const listMs: number[] = [];
  const floors: FloorTick[] = [];
  const starts: FloorTick[] = [];
  try {
    // Untimed: the floor's first runs (its worker's first tasks).
    await floor.tick();
    await floor.starts();
    for (let i = 0; i < TICKS; i++) {
      listMs.push(await reads(stack, 'svc', shape));
      ticks.push(await tick(stack, 'svc', shape));
      floors.push(await floor.tick());
      starts.push(await floor.starts());
    }
    listMs.push(await reads(stack, 'svc', shape));
  } finally {
    await floor.close();
  }

  const t0 = performance.now();
  const behind = await deleteServices(stack, 'svc', shape);
  const deletedIn = (performance.now() - t0) / 1000;
  if (behind.length > 0)
    console.log(
      `  the deleted services left ${behind.length} instances behind (not their members), e.g. ${behind.slice(0, 5).join(', ')}; deleted directly`,
    );
  const second = await direct(stack, 'direct-b', shape);
  row('direct (after)', second);
  console.log(
    `(deleting the services, until every VM was gone: ${deletedIn.toFixed(1)} s, untimed)`,
  );
  // Never done: compared by when as many VMs ran, whoever's, which flatters the services.
  const servicesSeconds = Number.isNaN(services.seconds) ? services.anySeconds : services.seconds;
  if (servicesSeconds !== services.seconds)
    console.log(
      `(the services never ran all theirs: compared by when ${TOTAL} VMs of theirs ran, a lower bound)`,
    );
  const ratio = servicesSeconds / ((first.seconds + second.seconds) / 2);
  console.log(
    `services / direct (wall time, against the mean of both direct runs): ${ratio.toFixed(2)}x; against each ${(servicesSeconds / first.seconds).toFixed(2)}x, ${(servicesSeconds / second.seconds).toFixed(2)}x`,
  );
  console.log(
    `goal, services within 1.3x of direct: ${verdict(ratio <= 1.3)} (${ratio.toFixed(2)}x)`,
  );
  printTicks(ticks, listMs, floors, starts);
} finally {
  await stack.close();
}
