import type { CloudDriver, CloudInstance, CloudInstanceInput } from './clouds/driver.ts';
import { CloudRefusedError, QuotaRefusedError, UnplaceableError } from './errors.ts';
import { planReconcile, type Desired, type Observed, type Plan, type Seen } from './plan.ts';

/** An instance the service made, as the service layer records it. */
export interface Member {
  name: string;
  index: number;
  /** The template revision it was made from; `unknown` for one found, not made, by this. */
  revision: string;
  createdAt: Date;
}

export interface ServiceSpec {
  project: string;
  name: string;
  /** The instance definition every instance is made from (its name and project aside). */
  template: Omit<CloudInstanceInput, 'project' | 'name'>;
  desired: Desired;
}

export interface StepOutcome {
  plan: Plan;
  /** The members after the step: made ones added, deleted ones gone. */
  members: Member[];
  /** Why instances the plan asked for were not made: the cloud's words, one line each. */
  refused: string[];
  /**
   * Whether the service is as declared, as far as its cloud lets it be: nothing deleted or
   * made, nothing waiting (a name still held), and any instance not made refused for the
   * quota or for room, which only a change elsewhere can give.
   */
  settled: boolean;
}

/** An instance's state as the cloud tells it, in the plan's terms. */
export function seenAs(state: string): Seen {
  switch (state) {
    case 'running':
    case 'stopped':
    case 'failed':
    case 'missing':
    case 'unknown':
      return state;
    default:
      // creating, starting, pending, migrating, ...: on its way, not serving yet
      return 'pending';
  }
}

/**
 * One reconcile of a service, carried out through its cloud: reads the service's instances
 * (`<service>-<n>`), asks planReconcile what to do, deletes and creates accordingly, and says
 * what the cloud refused. An instance the cloud has under the service's name that no member
 * records (a create whose record was lost) is taken in as of an unknown revision, so it is
 * rolled away rather than left behind; a member the cloud no longer has counts as missing.
 */
export async function reconcileStep(
  cloud: CloudDriver,
  spec: ServiceSpec,
  members: readonly Member[],
  now: Date,
  unknownSince: (instance: CloudInstance) => Date | null = () => now,
): Promise<StepOutcome> {
  const prefix = `${spec.name}-`;
  const found = new Map(
    (await cloud.instances(spec.project, prefix))
      .filter((i) => /^\d+$/.test(i.name.slice(prefix.length)))
      .map((i) => [i.name, i]),
  );
  const known = new Map(members.map((m) => [m.name, m]));
  for (const [name, instance] of found) {
    if (!known.has(name)) {
      known.set(name, {
        name,
        index: Number(name.slice(prefix.length)),
        revision: 'unknown',
        createdAt: new Date(instance.createdAt),
      });
    }
  }
  const observed: Observed[] = [...known.values()].map((m) => {
    const instance = found.get(m.name);
    const state = instance ? seenAs(instance.state) : 'missing';
    return {
      ...m,
      state,
      unknownSince: instance && state === 'unknown' ? unknownSince(instance) : null,
    };
  });
  const plan = planReconcile(spec.desired, observed, now);

  const refused: string[] = [];
  let changed = plan.delete.length > 0;
  let waiting = false;
  for (const { name } of plan.delete) {
    await cloud.delete(spec.project, name);
    known.delete(name);
  }
  for (const index of plan.create) {
    const name = `${prefix}${index}`;
    try {
      const made = await cloud.create({ ...spec.template, project: spec.project, name });
      known.set(name, {
        name,
        index,
        revision: spec.desired.revision,
        createdAt: new Date(made.createdAt),
      });
      changed = true;
    } catch (err) {
      // Refused for this one (its name's last VM still being decommissioned in its cluster,
      // say): said, and tried again next tick; the others go on.
      if (err instanceof CloudRefusedError) {
        refused.push(`${name} not made: ${err.message}`);
        waiting = true;
        continue;
      }
      if (!(err instanceof QuotaRefusedError || err instanceof UnplaceableError)) throw err;
      // The next ones would be refused alike: one line says why, with how many were not made.
      const left = plan.create.length - plan.create.indexOf(index);
      refused.push(`${left} of ${plan.create.length} not made: ${err.message}`);
      break;
    }
  }
  return {
    plan,
    members: [...known.values()].sort((a, b) => a.index - b.index),
    refused,
    settled: !changed && !waiting,
  };
}
