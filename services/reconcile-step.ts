import {
  CloudRefusedError,
  CloudUnreachableError,
  QuotaRefusedError,
  UnplaceableError,
} from './errors.ts';
import type { Desired, Plan } from './plan.ts';
import type { Health, Prober } from './probe.ts';
import { cloudsNamed, planPlacements } from './placements.ts';
import { listClouds, observeMembers, type StepClouds } from './step-observe.ts';
import type { Placement, Template } from './store.ts';

export { ownCloud, type StepClouds } from './step-observe.ts';

/** An instance the service made, as the service layer records it. */
export interface Member {
  name: string;
  index: number;
  /** The template revision it was made from; `unknown` for one found, not made, by this. */
  revision: string;
  createdAt: Date;
  /** The cloud its instance is in: null for the service's own, else another's name. */
  cloud?: string | null;
  /** The placement it was made for (placementKey); null for none. */
  placement?: string | null;
  /** Since when its cluster has not answered, while it does not. */
  unknownSince?: Date | null;
  /** Health checks it failed in a row. */
  failedChecks?: number;
  /** Why a step decided it goes, while its delete is not yet carried out. */
  retiring?: string | null;
  /** The cloud's id of its instance, once known. */
  instanceId?: string | null;
  /** Whether it has passed a health check since it was made. */
  healthy?: boolean;
}

export interface ServiceSpec {
  project: string;
  name: string;
  /** The instance definition every instance is made from (its name and project aside). */
  template: Template;
  desired: Desired;
  /** No two instances on one host, or in one cluster. */
  spread?: 'host' | 'cluster' | null;
  /** Where its replicas go (their sum is `desired.replicas`); none: where the cloud puts them. */
  placements?: readonly Placement[] | null;
  health?: Health | null;
}

export interface StepOutcome {
  plan: Plan;
  /** The members after the step: made ones added, deleted ones gone. */
  members: Member[];
  /** Why instances the plan asked for were not made: the cloud's words, one line each. */
  refused: string[];
  /** Running instances that failed their health check this step, and how. */
  unhealthy: string[];
  /**
   * Whether the service is as declared, as far as its cloud lets it be: nothing deleted or
   * made, nothing waiting (a name still held), and any instance not made refused for the
   * quota or for room, which only a change elsewhere can give.
   */
  settled: boolean;
}

/** Where a step records a member before its create is asked, and forgets one refused. */
export interface StepHooks {
  beforeCreate(member: Member): Promise<void>;
  refused(member: Member): Promise<void>;
  /** Called as the step goes on (after each delete, each batch of checks). */
  progress?(): void;
}

const noHooks: StepHooks = { beforeCreate: async () => {}, refused: async () => {} };
const noProbe: Prober = async () => ({ ok: true });

/** `<service>-<n>`'s index, for names of that shape. */
const indexIn = (name: string, prefix: string) => {
  const n = name.slice(prefix.length);
  return /^(0|[1-9][0-9]{0,5})$/.test(n) ? Number(n) : null;
};

/**
 * One reconcile of a service, carried out through its clouds (its own and the others its
 * placements name): reads the service's instances in each, probes the running ones, asks
 * planPlacements what to do for each of its placements, deletes and creates accordingly, and
 * says what the clouds refused. Only its members are the service's: an instance it did not
 * record (another's of a like name) is left alone, and each member is recorded
 * (`hooks.beforeCreate`) before its create is asked, so a create whose answer is lost, or a
 * worker that stops, leaves a member the next step finds. A member the cloud no longer has
 * counts as missing; one whose delete was refused stays, retiring, and goes however it stands
 * once its cloud takes the delete. Another cloud that does not answer stops none of the rest:
 * its members are `unknown` and nothing is asked of it.
 */
export async function reconcileStep(
  clouds: StepClouds,
  spec: ServiceSpec,
  members: readonly Member[],
  now: Date,
  hooks: StepHooks = noHooks,
  probe: Prober = noProbe,
): Promise<StepOutcome> {
  const prefix = `${spec.name}-`;
  const progress = hooks.progress ?? (() => {});
  const used = new Set<string | null>([
    null,
    ...members.map((m) => m.cloud ?? null),
    ...cloudsNamed(spec.placements),
  ]);
  const listing = await listClouds(clouds, used, prefix);
  const { observed, known, notOurs, unhealthy } = await observeMembers(
    listing,
    members,
    spec.health,
    now,
    probe,
    progress,
  );
  // New names take indexes no member holds nor any instance, in any cloud, of a like name.
  const held = new Set<number>();
  for (const found of listing.found.values()) {
    for (const name of found.keys()) {
      const n = indexIn(name, prefix);
      if (n !== null) held.add(n);
    }
  }
  const { plans, plan } = planPlacements(spec, observed, held, now);
  const reach = (cloud: string | null) => {
    const at = clouds.get(cloud);
    const silent = cloud === null ? undefined : listing.silent.get(cloud);
    return at && silent === undefined ? at : { why: `cloud ${cloud} not reached: ${silent}` };
  };

  const refused = [...listing.silent].map(([c, why]) => `cloud ${c} not reached: ${why}`);
  let changed = false;
  let waiting = refused.length > 0;
  for (const { name, reason } of plan.delete) {
    progress();
    if (notOurs.has(name)) {
      known.delete(name);
      changed = true;
      continue;
    }
    const at = reach(known.get(name)!.cloud ?? null);
    try {
      if ('why' in at) throw new CloudUnreachableError(at.why);
      await at.driver.delete(at.project, name);
      known.delete(name);
      changed = true;
    } catch (err) {
      // Refused for this one (its create not yet taken, its cluster or cloud silent): kept,
      // retiring, and tried again next step; the rest of the plan goes on.
      if (!(err instanceof CloudRefusedError || err instanceof CloudUnreachableError)) throw err;
      known.set(name, { ...known.get(name)!, retiring: reason });
      refused.push(`${name} not deleted yet: ${err.message}`);
      waiting = true;
    }
  }

  // Where the service already is, for `spread: 'cluster'`, cloud by cloud: the clusters of
  // every member still there (one whose delete waits, too).
  const usedClusters = new Map<string | null, Set<string>>();
  const clustersIn = (cloud: string | null) =>
    usedClusters.get(cloud) ?? usedClusters.set(cloud, new Set()).get(cloud)!;
  for (const m of known.values()) {
    const cluster = notOurs.has(m.name)
      ? undefined
      : listing.found.get(m.cloud ?? null)?.get(m.name)?.cluster;
    if (cluster !== undefined) clustersIn(m.cloud ?? null).add(cluster);
  }
  // The clouds whose quota refused a create: the next ones there would be refused alike.
  const quotaSaid = new Set<string | null>();
  for (const { group, plan: part } of plans) {
    const where = group.key === null ? '' : ` in ${group.key}`;
    const at = reach(group.cloud);
    if (part.create.length > 0 && 'why' in at) {
      refused.push(`${part.create.length} of ${part.create.length}${where} not made: ${at.why}`);
      waiting = true;
      continue;
    }
    for (const index of part.create) {
      if (quotaSaid.has(group.cloud) || 'why' in at) break;
      const member: Member = {
        name: `${prefix}${index}`,
        index,
        revision: spec.desired.revision,
        createdAt: now,
        cloud: group.cloud,
        placement: group.key,
        unknownSince: null,
        failedChecks: 0,
        retiring: null,
      };
      await hooks.beforeCreate(member);
      try {
        const made = await at.driver.create({
          ...spec.template,
          ...group.target,
          project: at.project,
          name: member.name,
          placement: {
            ...(spec.spread === 'host' ? { antiAffinity: [spec.name] } : {}),
            ...(spec.spread === 'cluster' ? { excludeClusters: [...clustersIn(group.cloud)] } : {}),
          },
        });
        known.set(member.name, {
          ...member,
          createdAt: new Date(made.createdAt),
          instanceId: made.id,
        });
        clustersIn(group.cloud).add(made.cluster);
        changed = true;
      } catch (err) {
        if (err instanceof CloudUnreachableError) {
          // It may have been made: the member stays, and the next step sees.
          known.set(member.name, member);
          refused.push(`${member.name}: no answer from the cloud; seen next step`);
          waiting = true;
          continue;
        }
        await hooks.refused(member);
        // Refused for this one (its name's last VM still being decommissioned in its
        // cluster, say): said, and tried again next step; the others go on.
        if (err instanceof CloudRefusedError) {
          refused.push(`${member.name} not made: ${err.message}`);
          waiting = true;
          continue;
        }
        if (!(err instanceof QuotaRefusedError || err instanceof UnplaceableError)) throw err;
        // The next ones would be refused alike (in this placement; for the quota, in all of
        // its cloud's): one line says why, with how many were not made.
        const left = part.create.length - part.create.indexOf(index);
        refused.push(`${left} of ${part.create.length}${where} not made: ${err.message}`);
        if (err instanceof QuotaRefusedError) quotaSaid.add(group.cloud);
        break;
      }
    }
  }
  return {
    plan,
    members: [...known.values()].sort((a, b) => a.index - b.index),
    refused,
    unhealthy,
    settled: !changed && !waiting,
  };
}
