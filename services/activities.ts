import { Context } from '@temporalio/activity';
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { CloudDriver } from './clouds/driver.ts';
import type { OtherClouds } from './clouds/index.ts';
import { cloudTokensOf, retireUnusedTokens, type CloudToken } from './cloud-tokens.ts';
import { cloudsNamed } from './placements.ts';
import type { Prober } from './probe.ts';
import { revokeQueued } from './revocations.ts';
import { reconcileStep, type Member, type StepClouds } from './reconcile-step.ts';
import type { StepCloud } from './step-observe.ts';
import {
  addMember,
  dropMember,
  membersOf,
  removeService,
  saveFailure,
  saveReconcile,
  serviceWithToken,
} from './store.ts';
import { endStep, renewStep, takeStep } from './step-lease.ts';

export interface ServiceActivityDeps {
  sql: postgres.Sql;
  /** The cloud the service's instances are in, reached with the service's token. */
  cloudFor(token: string): CloudDriver;
  /** The other clouds its placements may name (config.services.clouds); none by default. */
  clouds?: OtherClouds;
  /** Removes a deleted service's schedule once the service is gone. */
  dropSchedule(project: string, name: string): Promise<void>;
  /** Health checks, where the operator admits them (services/probe.ts). */
  probe: Prober;
}

export interface ReconcileOutcome {
  created: string[];
  deleted: string[];
  refused: string[];
  settled: boolean;
  /** The service was being deleted and is now gone, with its schedule and its token. */
  removed: boolean;
}

/** Tells Temporal the step is alive (a long one, hundreds of creates); nothing outside one. */
function beat() {
  try {
    const context = Context.current();
    // A local activity has no heartbeat: its workflow task is kept alive by its worker.
    if (!context.info.isLocal) context.heartbeat();
  } catch {
    // Not in an activity (called directly): nothing to tell.
  }
}

/**
 * Whether a token of the service's in another cloud may be done with: no placement names its
 * cloud (none does once the service is being deleted) and no member is left there.
 */
const mayRetire = (t: CloudToken, named: readonly string[], members: readonly Member[]) =>
  !named.includes(t.cloud) && !members.some((m) => m.cloud === t.cloud);

/** The service layer's activities: thin, over its records and its cloud drivers. */
export function createServiceActivities(deps: ServiceActivityDeps) {
  /** The clouds a service's step acts in: its own, and each other one it holds a token for. */
  function cloudsOf(
    service: { project: string },
    token: string,
    tokens: readonly CloudToken[],
  ): StepClouds {
    const clouds = new Map<string | null, StepCloud>([
      [null, { driver: deps.cloudFor(token), project: service.project }],
    ]);
    for (const t of tokens) {
      // A cloud the operator no longer allows is not reached: its members are seen unknown.
      const driver = deps.clouds?.driver(t.cloud, t.token, t.url);
      if (driver) clouds.set(t.cloud, { driver, project: t.project });
    }
    return clouds;
  }

  /**
   * The service's tokens in clouds it no longer uses go from it to the queue of revocations,
   * and are tried at once; one a cloud does not take now waits for the worker's sweep.
   */
  async function revokeUnused(serviceId: string) {
    await revokeQueued(deps, await retireUnusedTokens(deps.sql, serviceId));
  }

  /**
   * A deleted service with no instance left goes: its tokens in other clouds queued to be
   * revoked and tried, its schedule, then its record, with the token it holds then (one a call
   * renewed as it went too) queued in the same transaction and tried. Each part may be done
   * again: a worker stopped halfway leaves a record the next attempt finishes, or a queued
   * token the sweep revokes.
   */
  async function finish(service: { id: string; project: string; name: string }) {
    await revokeUnused(service.id);
    await deps.dropSchedule(service.project, service.name);
    const revoke = await removeService(deps.sql, service.id);
    if (revoke === null) return false;
    await revokeQueued(deps, revoke);
    return true;
  }

  return {
    /**
     * One reconcile of a service (null when the service is gone): its instances as its cloud
     * tells them, what planReconcile says to do, done, and recorded with the outcome. A
     * service being deleted is reconciled to no replicas, then removed with its schedule.
     */
    async reconcileService(serviceId: string): Promise<ReconcileOutcome | null> {
      const owner = randomUUID();
      // Another attempt still runs (one Temporal gave up on): this one does nothing.
      if (!(await takeStep(deps.sql, serviceId, owner))) {
        const gone = (await serviceWithToken(deps.sql, serviceId)) === null;
        return gone ? null : { ...idle, settled: false, removed: false };
      }
      try {
        return await reconcile(serviceId, owner);
      } finally {
        await endStep(deps.sql, serviceId, owner).catch(() => {});
      }
    },
  };

  async function reconcile(serviceId: string, owner: string): Promise<ReconcileOutcome | null> {
    const found = await serviceWithToken(deps.sql, serviceId);
    if (!found) return null;
    const { service, token } = found;
    const deleting = service.deletingAt !== null;
    // Paused: nothing is done (a tick that came anyway, or a trigger), until resumed.
    if (service.paused && !deleting) {
      return { ...idle, removed: false };
    }
    const [members, tokens] = await Promise.all([
      membersOf(deps.sql, serviceId),
      cloudTokensOf(deps.sql, serviceId),
    ]);
    if (deleting && members.length === 0) {
      return { ...idle, removed: await finish(service) };
    }
    const now = new Date();
    // The lease renewed as the step goes, at most every few seconds.
    let renewedAt = Date.now();
    const renew = () => {
      if (Date.now() - renewedAt < 5_000) return;
      renewedAt = Date.now();
      void renewStep(deps.sql, serviceId, owner).catch(() => {});
    };
    let step;
    try {
      step = await reconcileStep(
        cloudsOf(service, token, tokens),
        {
          project: service.project,
          name: service.name,
          template: service.template,
          spread: service.spread,
          placements: deleting ? null : service.placements,
          health: deleting ? null : service.health,
          desired: {
            replicas: deleting ? 0 : service.replicas,
            revision: service.revision,
            rollout: service.rollout,
            unknownGraceMs: service.unknownGraceSeconds * 1000,
            unhealthyAfter: service.unhealthyAfter,
          },
        },
        members,
        now,
        {
          beforeCreate: async (m) => {
            beat();
            await addMember(deps.sql, serviceId, owner, m);
          },
          refused: (m) => dropMember(deps.sql, serviceId, owner, m),
          progress: () => {
            beat();
            renew();
          },
        },
        deps.probe,
      );
    } catch (err) {
      // Said in its status (the next tick tries again), not only in the workflow's history.
      await saveFailure(deps.sql, serviceId, err instanceof Error ? err.message : String(err));
      throw err;
    }
    const was = new Set(members.map((m) => m.name));
    const is = new Set(step.members.map((m) => m.name));
    const created = [...is].filter((n) => !was.has(n));
    const deleted = step.plan.delete.map((d) => d.name).filter((n) => !is.has(n));
    await saveReconcile(
      deps.sql,
      serviceId,
      owner,
      step.members,
      {
        at: now.toISOString(),
        ...step.plan.status,
        settled: step.settled,
        refused: step.refused,
        unhealthy: step.unhealthy,
      },
      { created, deleted },
      members,
    );
    const named = deleting ? [] : cloudsNamed(service.placements);
    if (!deleting && tokens.some((t) => mayRetire(t, named, step.members))) {
      await revokeUnused(serviceId);
    }
    const removed = deleting && step.members.length === 0 && (await finish(service));
    return { created, deleted, refused: step.refused, settled: step.settled, removed };
  }
}

const idle = { created: [], deleted: [], refused: [], settled: true };

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
