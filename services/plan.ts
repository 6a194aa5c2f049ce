/**
 * Pure: what one reconcile of a service does, from what is declared and what is seen. The
 * service layer's workflow reads the instances from the cloud, asks this for a plan, and
 * carries it out; nothing here reads a clock or a table.
 */

/** How an instance of the service stands, as its cloud tells it. */
export type Seen =
  | 'running'
  | 'pending' // asked for, not yet running (creating, starting, its create not yet taken)
  | 'stopped'
  | 'failed'
  | 'missing' // its cloud has it, its cluster has no VM
  | 'unknown'; // its cluster does not answer

export interface Observed {
  /** `<service>-<n>`. */
  name: string;
  index: number;
  /** The template revision it was made from. */
  revision: string;
  state: Seen;
  createdAt: Date;
  /** Since when its cluster has not answered (state `unknown`). */
  unknownSince?: Date | null;
  /** Whether its host is down, as its cluster tells. */
  hostDown?: boolean;
  /** Health checks failed in a row (0 when it passed the last, or has none). */
  failedChecks?: number;
  /** Why a reconcile before decided it goes (its delete not yet carried out), if one did. */
  retiring?: string | null;
}

export interface Desired {
  replicas: number;
  revision: string;
  rollout: { maxUnavailable: number; maxSurge: number };
  /** How long an instance may be `unknown` before it is replaced elsewhere. */
  unknownGraceMs: number;
  /** Failed health checks in a row that make an instance dead. */
  unhealthyAfter: number;
}

export interface Plan {
  /** New instances, on the desired revision, by index. */
  create: number[];
  /** Instances to delete, each with why. */
  delete: Array<{ name: string; reason: string }>;
  /** Counts after this plan, as the service's status shows them. */
  status: {
    desired: number;
    running: number;
    pending: number;
    dead: number;
    outdated: number;
  };
}

/** Why an instance no longer counts (to be replaced), and whether only for failing its checks. */
function deathOf(i: Observed, d: Desired, now: Date): { why: string; sick?: true } | null {
  if (i.retiring) return { why: i.retiring };
  if (i.state === 'failed') return { why: 'it failed' };
  if (i.state === 'missing') return { why: 'its VM is gone from its cluster' };
  if (i.state === 'stopped') return { why: 'it is stopped' };
  if (i.hostDown) return { why: 'its host is down' };
  if ((i.failedChecks ?? 0) >= d.unhealthyAfter) {
    return { why: `it failed ${i.failedChecks} health checks in a row`, sick: true };
  }
  if (i.state === 'unknown' && i.unknownSince) {
    const silentMs = now.getTime() - i.unknownSince.getTime();
    if (silentMs >= d.unknownGraceMs) {
      return { why: `its cluster has not answered for ${Math.round(silentMs / 1000)} s` };
    }
  }
  return null;
}

/** Why an instance no longer counts (to be replaced), or null while it may still serve. */
export const deadBecause = (i: Observed, d: Desired, now: Date): string | null =>
  deathOf(i, d, now)?.why ?? null;

/**
 * How many instances failing their health check one step may still take away: `maxUnavailable`
 * (one, at least) for the whole service, however many placements it is planned in, so a check
 * that fails for all (a dependency down) does not take every instance at once.
 */
export interface SickBudget {
  left: number;
}
export const sickBudget = (d: Desired): SickBudget => ({
  left: Math.max(1, d.rollout.maxUnavailable),
});

/**
 * Why an instance goes in this step, or null: the dead go, those dead only for failing their
 * health checks while `sick` lasts (each taking one of it).
 */
export function goesBecause(i: Observed, d: Desired, now: Date, sick: SickBudget): string | null {
  const death = deathOf(i, d, now);
  if (!death?.sick) return death?.why ?? null;
  if (sick.left === 0) return null;
  sick.left -= 1;
  return death.why;
}

const newestFirst = (a: Observed, b: Observed) =>
  b.createdAt.getTime() - a.createdAt.getTime() || b.index - a.index;
const oldestFirst = (a: Observed, b: Observed) => -newestFirst(a, b);

/**
 * The plan: dead instances are deleted and replaced; current ones beyond `replicas` are
 * deleted newest first; instances of an older revision are replaced, never taking the running
 * ones below `replicas - maxUnavailable` nor creating past `replicas + maxSurge` live at once
 * (with maxUnavailable 0 a replacement runs before the one it replaces goes). With both
 * bounds 0 no rollout could move, so one instance may then be unavailable.
 */
export function planReconcile(
  desired: Desired,
  seen: readonly Observed[],
  now: Date,
  /** Indexes held elsewhere (by the service's other placements): new ones take others. */
  held: ReadonlySet<number> = new Set(),
  /** What is left of the step's budget for instances failing their checks (the service's). */
  sick: SickBudget = sickBudget(desired),
): Plan {
  const { replicas, revision } = desired;
  const maxSurge = desired.rollout.maxSurge;
  const maxUnavailable =
    maxSurge === 0 && desired.rollout.maxUnavailable === 0 ? 1 : desired.rollout.maxUnavailable;
  const remove: Plan['delete'] = [];
  const gone = new Set<Observed>();
  const drop = (i: Observed, reason: string) => {
    remove.push({ name: i.name, reason });
    gone.add(i);
  };

  for (const i of seen) {
    const why = goesBecause(i, desired, now, sick);
    if (why) drop(i, why);
  }
  const dead = gone.size;

  // Current instances beyond the replicas asked: the newest go.
  const current = seen.filter((i) => !gone.has(i) && i.revision === revision);
  for (const i of [...current].sort(newestFirst).slice(0, Math.max(0, current.length - replicas))) {
    drop(i, 'more than the replicas asked');
  }

  // Outdated ones go while enough keep running: those not running first, then the oldest.
  const isRunning = (i: Observed) => i.state === 'running' && !gone.has(i);
  let running = seen.filter(isRunning).length;
  const floor = Math.max(0, replicas - maxUnavailable);
  const outdated = seen
    .filter((i) => !gone.has(i) && i.revision !== revision)
    .sort((a, b) => Number(isRunning(a)) - Number(isRunning(b)) || oldestFirst(a, b));
  for (const i of outdated) {
    if (isRunning(i)) {
      if (running - 1 < floor) break;
      running -= 1;
    }
    drop(i, `its template is outdated (${i.revision})`);
  }

  // New instances on the current template: up to `replicas` of them, within the surge.
  const kept = seen.filter((i) => !gone.has(i));
  const currentKept = kept.filter((i) => i.revision === revision).length;
  const count = Math.min(
    Math.max(0, replicas - currentKept),
    Math.max(0, replicas + maxSurge - kept.length),
  );
  const taken = new Set([...held, ...seen.map((i) => i.index)]);
  const create: number[] = [];
  for (let n = 0; create.length < count; n++) if (!taken.has(n)) create.push(n);

  return {
    create,
    delete: remove,
    status: {
      desired: replicas,
      running: kept.filter((i) => i.state === 'running').length,
      pending: kept.filter((i) => i.state !== 'running').length + create.length,
      dead,
      outdated: kept.filter((i) => i.revision !== revision).length,
    },
  };
}
