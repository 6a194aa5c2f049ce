// One reconcile tick of every service when nothing changed: each service's schedule triggered
// once, all at once (services/schedules.ts triggerSchedule, as a change would), timed until
// each has recorded a new reconcile; what it cost in Temporal actions (bench/services-actions)
// and in SQL statements; and, for scale, the reads a tick cannot do without (one
// instances.list of each service's instances through the cloud's API) all at once.
import { scheduleId, triggerSchedule } from '../services/schedules.ts';
import type { Sql } from '../registry/db.ts';
import { actionsTaken, tickActions, type TickCount } from './services-actions.ts';
import { serviceName, until, type Shape } from './services-runs.ts';
import type { ServicesStack } from './services-stack.ts';
import { cpuTimes, type CpuTimes } from './support.ts';

interface Status {
  at?: string;
  settled?: boolean;
  running?: number;
  refused?: string[];
}

/** Each service's last recorded reconcile. The comment keeps the bench's polls out of counts. */
async function statuses(sql: Sql, project: string): Promise<Map<string, Status>> {
  const rows = await sql<{ name: string; status: Status }[]>`
    /* bench */ SELECT name, status FROM services.services WHERE project = ${project}`;
  return new Map(rows.map((r) => [r.name, r.status]));
}

const names = (shape: Shape) => Array.from({ length: shape.services }, (_, s) => serviceName(s));

const triggerAll = (stack: ServicesStack, project: string, shape: Shape) =>
  Promise.all(names(shape).map((n) => triggerSchedule(stack.temporal, project, n)));

/**
 * Takes each service's own interval off its schedule (each fires at an offset of its own
 * within the period), so that only the bench's triggers run a reconcile in a measured round.
 */
export async function triggersOnly(stack: ServicesStack, project: string, shape: Shape) {
  await Promise.all(
    names(shape).map((n) =>
      stack.temporal.schedule
        .getHandle(scheduleId(project, n))
        .update((was) => ({ ...was, spec: { intervals: [] } })),
    ),
  );
}

/**
 * Until every service says it is as declared (all its replicas running, nothing done), for
 * at most three rounds of triggers; answers the lines of those that never said so.
 */
export async function settle(stack: ServicesStack, project: string, shape: Shape) {
  const unsettled = async () =>
    [...(await statuses(stack.sql, project))].filter(
      ([, s]) => s.settled !== true || s.running !== shape.replicas,
    );
  for (let round = 0; round < 3; round++) {
    await triggerAll(stack, project, shape);
    const none = async () => (await unsettled()).length === 0;
    if (
      await until('every service settled', none, unsettled, 20_000).then(
        () => true,
        () => false,
      )
    )
      return [];
  }
  return (await unsettled()).map(
    ([n, s]) => `${n}: ${s.running} running; ${s.refused?.join('; ')}`,
  );
}

/**
 * SQL statements run through `sql` (every layer in this process shares its pool) until
 * `stop`, by their first 90 characters; the bench's own are left out.
 */
function countStatements(sql: Sql) {
  const counts = new Map<string, number>();
  sql.options.debug = (_connection, query) => {
    if (query.includes('/* bench */')) return;
    const key = query.replace(/\s+/g, ' ').trim().slice(0, 90);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  return {
    stop() {
      sql.options.debug = false;
      return counts;
    },
  };
}

export interface Tick {
  ms: number;
  /** When the triggers went out (epoch ms, for the histories' times). */
  at: number;
  /** The CPU the bench's process, Temporal's and PostgreSQL's spent from then until the last. */
  cpu: [CpuTimes, CpuTimes];
  count: TickCount;
  statements: Map<string, number>;
  /** Services that said, after it, that nothing needed doing. */
  settled: number;
}

export async function tick(stack: ServicesStack, project: string, shape: Shape): Promise<Tick> {
  const ids = names(shape).map((n) => scheduleId(project, n));
  const before = await actionsTaken(stack.temporal, ids);
  const was = await statuses(stack.sql, project);
  const statements = countStatements(stack.sql);
  const since = new Date();
  const cpu0 = cpuTimes();
  const at = Date.now();
  const t0 = performance.now();
  await triggerAll(stack, project, shape);
  const renewed = async () =>
    [...(await statuses(stack.sql, project))].filter(([n, s]) => s.at !== was.get(n)?.at).length;
  await until(
    'every service reconciled again',
    async () => (await renewed()) === shape.services,
    renewed,
  );
  const ms = performance.now() - t0;
  const cpu1 = cpuTimes();
  const counted = statements.stop();
  const count = await tickActions(stack.temporal, before, since);
  const after = await statuses(stack.sql, project);
  return {
    ms,
    at,
    cpu: [cpu0, cpu1],
    count,
    statements: counted,
    settled: [...after.values()].filter((s) => s.settled === true).length,
  };
}

/** One instances.list of each service's instances, all at once, through the cloud's API. */
export async function reads(stack: ServicesStack, project: string, shape: Shape): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    names(shape).map((n) => stack.cloud.instances.list.query({ project, prefix: `${n}-` })),
  );
  return performance.now() - t0;
}
