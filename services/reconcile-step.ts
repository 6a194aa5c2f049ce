import type { CloudDriver, CloudInstance, CloudInstanceInput } from './clouds/driver.ts';
import {
  CloudRefusedError,
  CloudUnreachableError,
  QuotaRefusedError,
  UnplaceableError,
} from './errors.ts';
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

/** Where a step records a member before its create is asked, and forgets one refused. */
export interface StepHooks {
  beforeCreate(member: Member): Promise<void>;
  refused(member: Member): Promise<void>;
}

const noHooks: StepHooks = { beforeCreate: async () => {}, refused: async () => {} };

/**
 * One reconcile of a service, carried out through its cloud: reads the service's instances,
 * asks planReconcile what to do, deletes and creates accordingly, and says what the cloud
 * refused. Only its members are the service's: an instance it did not record (another's of a
 * like name) is left alone, and each member is recorded (`hooks.beforeCreate`) before its
 * create is asked, so a create whose answer is lost, or a worker that stops, leaves a member
 * the next step finds. A member the cloud no longer has counts as missing.
 */
export async function reconcileStep(
  cloud: CloudDriver,
  spec: ServiceSpec,
  members: readonly Member[],
  now: Date,
  hooks: StepHooks = noHooks,
  unknownSince: (instance: CloudInstance) => Date | null = () => now,
): Promise<StepOutcome> {
  const prefix = `${spec.name}-`;
  const found = new Map(
    (await cloud.instances(spec.project, prefix)).map((i) => [i.name, i] as const),
  );
  const known = new Map(members.map((m) => [m.name, m]));
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
  let changed = false;
  let waiting = false;
  for (const { name } of plan.delete) {
    try {
      await cloud.delete(spec.project, name);
      known.delete(name);
      changed = true;
    } catch (err) {
      // Refused for this one (its create not yet taken, its cluster silent): kept, and
      // tried again next step; the rest of the plan goes on.
      if (!(err instanceof CloudRefusedError || err instanceof CloudUnreachableError)) throw err;
      refused.push(`${name} not deleted yet: ${err.message}`);
      waiting = true;
    }
  }
  for (const index of plan.create) {
    const member: Member = {
      name: `${prefix}${index}`,
      index,
      revision: spec.desired.revision,
      createdAt: now,
    };
    await hooks.beforeCreate(member);
    try {
      const made = await cloud.create({
        ...spec.template,
        project: spec.project,
        name: member.name,
      });
      known.set(member.name, { ...member, createdAt: new Date(made.createdAt) });
      changed = true;
    } catch (err) {
      if (err instanceof CloudUnreachableError) {
        // It may have been made: the member stays, and the next step sees.
        known.set(member.name, member);
        refused.push(`${member.name}: no answer from the cloud; seen next step`);
        waiting = true;
        break;
      }
      await hooks.refused(member);
      // Refused for this one (its name's last VM still being decommissioned in its cluster,
      // say): said, and tried again next step; the others go on.
      if (err instanceof CloudRefusedError) {
        refused.push(`${member.name} not made: ${err.message}`);
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
