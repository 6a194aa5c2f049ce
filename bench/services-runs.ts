// bench/services' measured runs: the same instances made directly through the cloud's API, or
// declared as services whose reconciles make them; each timed until every VM runs, and each
// cleaned away before the next (every VM gone from the hosts).
import type { Sql } from '../registry/db.ts';
import { triggerSchedule } from '../services/schedules.ts';
import type { ServicesStack } from './services-stack.ts';
import { cpuPer, cpuTimes, runClients } from './support.ts';

export interface Shape {
  services: number;
  replicas: number;
  /** Concurrent clients: one per service by default, each making its instances in turn. */
  clients: number;
  everySeconds: number;
  /** How long a run may take before it is given up as never done. */
  limitSeconds: number;
}

export interface Run {
  /** Until all the instances asked for ran (the services' own members); NaN if never. */
  seconds: number;
  /** How many of them ran by then, or by the limit. */
  reached: number;
  /** Until as many VMs of the project ran, whoever's. */
  anySeconds: number;
  /** The project's VMs beyond the instances asked for, once those all ran. */
  excess: number;
  /** Until the last create call (instances.create, services.create) returned. */
  calledSeconds: number;
  cpu: string;
}

export const serviceName = (s: number) => `s${String(s).padStart(3, '0')}`;
export const template = { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] };

/** Polls `ok` every 50 ms for up to `ms`; on timeout fails with `what` and `seen()`. */
export async function until(
  what: string,
  ok: () => Promise<boolean>,
  seen: () => Promise<unknown>,
  ms = 600_000,
) {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline)
      throw new Error(`never: ${what} (${JSON.stringify(await seen())})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The project's VMs (`<project>.<instance>`) by state, as the cluster's registry has them. */
async function vms(sql: Sql, project: string) {
  const [row] = await sql<{ running: number; failed: number; live: number }[]>`
    SELECT count(*) FILTER (WHERE metadata->>'state' = 'running')::int AS running,
           count(*) FILTER (WHERE metadata->>'state' = 'failed')::int AS failed,
           count(*) FILTER (WHERE coalesce(metadata->>'state', '') <> 'gone')::int AS live
    FROM nodes WHERE type = 'vm' AND starts_with(name, ${`${project}.`})`;
  return row!;
}

/** The VMs of the instances the project's services record as theirs (their members). */
async function members(sql: Sql, project: string) {
  const [row] = await sql<{ running: number; failed: number }[]>`
    SELECT count(*) FILTER (WHERE n.metadata->>'state' = 'running')::int AS running,
           count(*) FILTER (WHERE n.metadata->>'state' = 'failed')::int AS failed
    FROM services.members m JOIN services.services s ON s.id = m.service_id
    JOIN nodes n ON n.type = 'vm' AND n.name = s.project || '.' || s.name || '-' || m.idx
    WHERE s.project = ${project}`;
  return row!;
}

type Count = (sql: Sql, project: string) => Promise<{ running: number; failed: number }>;

/**
 * Polls until `counted` says `count` run, or for `limitMs` from `t0`: answers when that was
 * (seconds from t0; NaN if never), how many it reached, and when the project had `count` VMs
 * running, whoever's they were.
 */
async function runningBy(
  sql: Sql,
  project: string,
  count: number,
  counted: Count,
  t0: number,
  limitMs: number,
) {
  let anyAt = NaN;
  for (;;) {
    const own = await counted(sql, project);
    if (own.failed > 0) throw new Error(`${own.failed} VMs of ${project} failed`);
    const at = (performance.now() - t0) / 1000;
    if (Number.isNaN(anyAt) && (await vms(sql, project)).running >= count) anyAt = at;
    if (own.running >= count) return { at, anyAt, reached: own.running };
    if (at * 1000 > limitMs) return { at: NaN, anyAt, reached: own.running };
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function allGone(sql: Sql, project: string) {
  await until(
    `every VM of ${project} gone`,
    async () => (await vms(sql, project)).live === 0,
    () => vms(sql, project),
  );
}

/** Times `make` (its calls on `clients` loops, one per service) until every VM runs. */
async function timed(
  stack: ServicesStack,
  project: string,
  shape: Shape,
  make: (s: number) => Promise<void>,
  counted: Count = vms,
): Promise<Run> {
  const cpu0 = cpuTimes();
  const t0 = performance.now();
  await runClients(shape.services, shape.clients, make);
  const calledSeconds = (performance.now() - t0) / 1000;
  const total = shape.services * shape.replicas;
  const ran = await runningBy(stack.sql, project, total, counted, t0, shape.limitSeconds * 1000);
  return {
    seconds: ran.at,
    reached: ran.reached,
    anySeconds: ran.anyAt,
    excess: (await vms(stack.sql, project)).live - total,
    calledSeconds,
    cpu: cpuPer(cpu0, cpuTimes(), total),
  };
}

/** Each client makes one service's worth of instances, one after another, as its reconcile does. */
export async function direct(stack: ServicesStack, project: string, shape: Shape): Promise<Run> {
  const names = (s: number) =>
    Array.from({ length: shape.replicas }, (_, r) => `${serviceName(s)}-${r}`);
  const run = await timed(stack, project, shape, async (s) => {
    for (const name of names(s)) {
      await stack.cloud.instances.create.mutate({ project, name, ...template });
    }
  });
  await runClients(shape.services, shape.clients, async (s) => {
    for (const name of names(s)) await stack.cloud.instances.delete.mutate({ project, name });
  });
  await allGone(stack.sql, project);
  return run;
}

/** Each client declares one service; its schedule's first reconcile makes its instances. */
export function declared(stack: ServicesStack, project: string, shape: Shape): Promise<Run> {
  return timed(
    stack,
    project,
    shape,
    async (s) => {
      await stack.services.services.create.mutate({
        project,
        name: serviceName(s),
        template,
        replicas: shape.replicas,
        everySeconds: shape.everySeconds,
      });
    },
    members,
  );
}

/** Every instance the project has in the cloud, page by page. */
async function instancesOf(stack: ServicesStack, project: string): Promise<string[]> {
  const names: string[] = [];
  for (;;) {
    const after = names.at(-1);
    const page = await stack.cloud.instances.list.query({ project, ...(after ? { after } : {}) });
    names.push(...page.map((i) => i.name));
    if (page.length < 100) return names;
  }
}

/**
 * Deletes the services (their reconciles delete their instances) until none is left; answers
 * the instances they left behind (not their members), which are then deleted directly.
 */
export async function deleteServices(
  stack: ServicesStack,
  project: string,
  shape: Shape,
): Promise<string[]> {
  await runClients(shape.services, shape.clients, async (s) => {
    await stack.services.services.delete.mutate({ project, name: serviceName(s) });
  });
  const left = async () =>
    (
      await stack.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM services.services WHERE project = ${project}`
    )[0]!.n;
  // Each service's delete triggers one reconcile; its period (EVERY_SECONDS, a day by
  // default) brings no other soon, so any still there is triggered again every few seconds.
  let nudged = performance.now();
  const gone = async () => {
    if (performance.now() - nudged > 5_000) {
      nudged = performance.now();
      const rows = await stack.sql<{ name: string }[]>`
        SELECT name FROM services.services WHERE project = ${project}`;
      await Promise.all(
        rows.map((r) => triggerSchedule(stack.temporal, project, r.name).catch(() => {})),
      );
    }
    return (await left()) === 0;
  };
  await until('every service removed', gone, left);
  const behind = await instancesOf(stack, project);
  for (const name of behind) await stack.cloud.instances.delete.mutate({ project, name });
  await allGone(stack.sql, project);
  return behind;
}
