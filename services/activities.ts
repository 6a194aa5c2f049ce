import type postgres from 'postgres';
import type { CloudDriver } from './clouds/driver.ts';
import { reconcileStep } from './reconcile-step.ts';
import {
  addMember,
  dropMember,
  getServiceById,
  membersOf,
  removeService,
  saveFailure,
  saveReconcile,
  serviceToken,
} from './store.ts';

export interface ServiceActivityDeps {
  sql: postgres.Sql;
  /** The cloud the service's instances are in, reached with the service's token. */
  cloudFor(token: string): CloudDriver;
  /** Removes a deleted service's schedule once the service is gone. */
  dropSchedule(project: string, name: string): Promise<void>;
}

export interface ReconcileOutcome {
  created: string[];
  deleted: string[];
  refused: string[];
  settled: boolean;
  /** The service was being deleted and is now gone, with its schedule. */
  removed: boolean;
}

/** The service layer's activities: thin, over its records and its cloud driver. */
export function createServiceActivities(deps: ServiceActivityDeps) {
  return {
    /**
     * One reconcile of a service (null when the service is gone): its instances as its cloud
     * tells them, what planReconcile says to do, done, and recorded with the outcome. A
     * service being deleted is reconciled to no replicas, then removed with its schedule.
     */
    async reconcileService(serviceId: string): Promise<ReconcileOutcome | null> {
      const service = await getServiceById(deps.sql, serviceId);
      const token = await serviceToken(deps.sql, serviceId);
      if (!service || token === null) return null;
      const deleting = service.deletingAt !== null;
      // Paused: nothing is done (a tick that came anyway, or a trigger), until resumed.
      if (service.paused && !deleting) {
        return { created: [], deleted: [], refused: [], settled: true, removed: false };
      }
      const members = await membersOf(deps.sql, serviceId);
      const now = new Date();
      let step;
      try {
        step = await reconcileStep(
          deps.cloudFor(token),
          {
            project: service.project,
            name: service.name,
            template: service.template,
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
            beforeCreate: (m) => addMember(deps.sql, serviceId, m),
            refused: (m) => dropMember(deps.sql, serviceId, m),
          },
        );
      } catch (err) {
        // Said in its status (the next tick tries again), not only in the workflow's history.
        await saveFailure(deps.sql, serviceId, err instanceof Error ? err.message : String(err));
        throw err;
      }
      const was = new Set(members.map((m) => m.name));
      const is = new Set(step.members.map((m) => m.name));
      const created = [...is].filter((n) => !was.has(n));
      const deleted = step.plan.delete.map((d) => d.name);
      await saveReconcile(
        deps.sql,
        serviceId,
        step.members,
        {
          at: now.toISOString(),
          ...step.plan.status,
          settled: step.settled,
          refused: step.refused,
        },
        { created, deleted },
      );
      let removed = false;
      if (deleting && step.members.length === 0 && (await removeService(deps.sql, serviceId))) {
        await deps.dropSchedule(service.project, service.name);
        removed = true;
      }
      return { created, deleted, refused: step.refused, settled: step.settled, removed };
    },
  };
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
