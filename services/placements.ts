import {
  deadBecause,
  goesBecause,
  planReconcile,
  sickBudget,
  type Desired,
  type Observed,
  type Plan,
  type SickBudget,
} from './plan.ts';
import type { Placement } from './store.ts';

/**
 * Pure: a service's placements as groups of replicas, each planned on its own by
 * planReconcile, and what goes of the members of a placement no longer declared.
 */

/**
 * A placement's key, as its members record it. Those of the service's own cloud are as they
 * always were (`cluster:x`, `region:y`, `any`); another cloud's are under its name
 * (`cloud:east`, `cloud:east/cluster:x`, `cloud:east/region:y`).
 */
export function placementKey(p: {
  cloud?: string | null | undefined;
  cluster?: string | undefined;
  region?: string | undefined;
}): string {
  const where =
    p.cluster !== undefined
      ? `cluster:${p.cluster}`
      : p.region !== undefined
        ? `region:${p.region}`
        : null;
  if (p.cloud === undefined || p.cloud === null) return where ?? 'any';
  return where === null ? `cloud:${p.cloud}` : `cloud:${p.cloud}/${where}`;
}

export interface Group {
  key: string | null;
  /** The cloud its replicas are in: null for the service's own. */
  cloud: string | null;
  target: { cluster?: string; region?: string };
  replicas: number;
}

/** The service's placements as groups of replicas, each planned on its own. */
export function groupsOf(spec: {
  desired: { replicas: number };
  placements?: readonly Placement[] | null;
}): Group[] {
  if (!spec.placements) {
    return [{ key: null, cloud: null, target: {}, replicas: spec.desired.replicas }];
  }
  const groups = new Map<string, Group>();
  for (const p of spec.placements) {
    const key = placementKey(p);
    const target = {
      ...(p.cluster === undefined ? {} : { cluster: p.cluster }),
      ...(p.region === undefined ? {} : { region: p.region }),
    };
    const g = groups.get(key) ?? { key, cloud: p.cloud ?? null, target, replicas: 0 };
    g.replicas += p.replicas;
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The other clouds a service's placements name, each once, in their order. */
export const cloudsNamed = (placements: readonly Placement[] | null | undefined): string[] => [
  ...new Set((placements ?? []).flatMap((p) => (p.cloud ? [p.cloud] : []))),
];

/** The replicas placements add up to. */
export const placedTotal = (placements: readonly { replicas: number }[]): number =>
  placements.reduce((n, p) => n + p.replicas, 0);

export const ONE_PER_CLUSTER =
  "puts more than one replica in one cluster, which spread 'cluster' forbids";

/** The placements (by index) that put more than one replica in one cluster against `spread`. */
export const overSpread = (
  spread: unknown,
  placements: readonly { cluster?: string | undefined; replicas: number }[] | null | undefined,
): number[] =>
  spread !== 'cluster'
    ? []
    : (placements ?? []).flatMap((p, n) => (p.cluster !== undefined && p.replicas > 1 ? [n] : []));

/**
 * Members of a placement no longer declared: the dead go at once (those failing their checks
 * only while the service's budget for them lasts: `sick`), the others (those not
 * running first, then the oldest) while the service keeps `replicas - maxUnavailable` running,
 * as a rollout would; each counts as outdated until it goes.
 */
export function dropOrphans(
  desired: Desired,
  orphans: readonly Observed[],
  placed: readonly Observed[],
  goingAnyway: ReadonlySet<string>,
  now: Date,
  sick: SickBudget = sickBudget(desired),
): Plan {
  const isRunning = (o: Observed) => o.state === 'running';
  const { maxUnavailable, maxSurge } = desired.rollout;
  const floor = Math.max(0, desired.replicas - Math.max(maxUnavailable, maxSurge === 0 ? 1 : 0));
  let running = [...placed, ...orphans].filter(
    (o) => isRunning(o) && !goingAnyway.has(o.name),
  ).length;
  const remove: Plan['delete'] = [];
  const order = [...orphans].sort(
    (a, b) =>
      Number(isRunning(a)) - Number(isRunning(b)) || a.createdAt.getTime() - b.createdAt.getTime(),
  );
  for (const o of order) {
    const dead = goesBecause(o, desired, now, sick);
    if (!dead && isRunning(o)) {
      if (running - 1 < floor) continue;
      running -= 1;
    }
    remove.push({ name: o.name, reason: dead ?? 'its placement is no longer declared' });
  }
  return {
    create: [],
    delete: remove,
    status: {
      desired: 0,
      running: orphans.filter((o) => isRunning(o) && !remove.some((r) => r.name === o.name)).length,
      pending: orphans.filter((o) => !isRunning(o) && !remove.some((r) => r.name === o.name))
        .length,
      dead: orphans.filter((o) => deadBecause(o, desired, now)).length,
      outdated: orphans.length - remove.length,
    },
  };
}

/** An observed member with the placement it was made for (its key; null for none). */
export type Placed = Observed & { placement?: string | null | undefined };

/**
 * The plan of one step over all of a service's placements: each placement planned on its own,
 * the members of placements no longer declared dropped as the rollout allows. New instances
 * take indexes not in `held` (every member's, and every instance of the project's of a like
 * name, in any cloud) nor one another's.
 */
export function planPlacements(
  spec: { desired: Desired; placements?: readonly Placement[] | null },
  observed: readonly Placed[],
  held: ReadonlySet<number>,
  now: Date,
): { plans: { group: Group; plan: Plan }[]; plan: Plan } {
  const groups = groupsOf(spec);
  const keys = new Set(groups.map((g) => g.key));
  const placed = (o: Placed) => o.placement ?? null;
  const taken = new Set([...held, ...observed.map((o) => o.index)]);
  // One budget for those failing their checks across every placement: the service's.
  const sick = sickBudget(spec.desired);
  const plans = groups.map((g) => {
    const mine = observed.filter((o) => placed(o) === g.key);
    const desired = { ...spec.desired, replicas: g.replicas };
    const plan = planReconcile(desired, mine, now, taken, sick);
    for (const n of plan.create) taken.add(n);
    return { group: g, plan };
  });
  const orphans = dropOrphans(
    spec.desired,
    observed.filter((o) => !keys.has(placed(o))),
    observed.filter((o) => keys.has(placed(o))),
    new Set(plans.flatMap((p) => p.plan.delete.map((d) => d.name))),
    now,
    sick,
  );
  const plan: Plan = {
    create: plans.flatMap((p) => p.plan.create),
    delete: [...plans.flatMap((p) => p.plan.delete), ...orphans.delete],
    status: { desired: spec.desired.replicas, running: 0, pending: 0, dead: 0, outdated: 0 },
  };
  for (const p of [...plans.map((x) => x.plan), orphans]) {
    for (const k of Object.keys(plan.status) as (keyof Plan['status'])[]) {
      if (k !== 'desired') plan.status[k] += p.status[k];
    }
  }
  return { plans, plan };
}
