import { vmWorkflowId } from '../../../common/vocabulary.ts';
import { clusterDriver } from '../../clusters/index.ts';
import { type ClusterDriver, type ClusterVm, type VmVerb } from '../../clusters/driver.ts';
import {
  CloudNotFoundError,
  CloudPreconditionError,
  ClusterUnreachableError,
} from '../../errors.ts';
import { instanceEvents, recordEvent } from '../../store/events.ts';
import {
  acceptInstance,
  getInstance,
  listInstances,
  releaseInstance,
  type InstanceRecord,
} from '../../store/instances.ts';
import { z } from 'zod';
import {
  instanceCreateOut,
  instanceDeleteOut,
  instanceOperationOut,
  instanceOperationsOut,
  operationOut,
  instanceOut,
  operationDetailOut,
} from '../outputs.ts';
import { createInstance } from '../create-instance.ts';
import { actorOf, knownClusters, projectOf, type AuthedContext } from '../context.ts';
import {
  byInstance,
  instanceCreateInput,
  instanceListInput,
  instanceOperationInput,
  instanceOperationsInput,
} from '../schemas.ts';
import { PROJECT_READ, PROJECT_WRITE, procedure, router, routes } from '../trpc.ts';

const at = routes('instances');

/** What the cluster says of an instance now: its VM, none (`missing`), or no answer. */
type Seen = ClusterVm | null | 'unknown';

/** An instance as the cloud answers it: its record, and its state as its cluster tells it. */
function view(instance: InstanceRecord, seen: Seen) {
  const { vmName: _vmName, acceptedAt: _acceptedAt, ...record } = instance;
  const vm = seen === 'unknown' ? null : seen;
  return {
    ...record,
    // No VM: `pending` while its create is not yet taken, `missing` after (the reconciler
    // gives its share back).
    state:
      seen === 'unknown'
        ? ('unknown' as const)
        : (vm?.state ?? (instance.acceptedAt === null ? 'pending' : 'missing')),
    addresses: (vm?.definition.nics ?? []).map((n) => ({
      network: n.network,
      ip: n.ip,
      mac: n.mac,
    })),
    error: vm?.error ?? null,
    operation: vm?.operation ?? null,
  };
}

/** The VM of an instance, as its cluster answers now; `unknown` when it does not answer. */
async function seen(driver: ClusterDriver, instance: InstanceRecord): Promise<Seen> {
  try {
    return await driver.getVm(instance.vmName);
  } catch (err) {
    if (err instanceof ClusterUnreachableError) return 'unknown';
    throw err;
  }
}

/** A live instance of a project, by name, and the driver of the cluster that holds it. */
async function instanceAt(
  ctx: AuthedContext,
  at: { project: string; name: string },
  options: { deleted?: boolean } = {},
) {
  const project = await projectOf(ctx, at.project);
  const { instance, cluster } = await getInstance(ctx.sql, project.id, at.name, options);
  return { project, instance, driver: clusterDriver(ctx, cluster) };
}

/** Passes one of a VM's operations to the instance's cluster, and records it. */
function operation(verb: VmVerb) {
  return procedure
    .meta(at(PROJECT_WRITE, `POST /projects/{project}/instances/{name}/${verb}`))
    .input(byInstance)
    .output(instanceOperationOut)
    .mutation(async ({ ctx, input }) => {
      const { project, instance, driver } = await instanceAt(ctx, input);
      const op = await driver.operate(instance.vmName, verb);
      await recordEvent(ctx.sql, actorOf(ctx), {
        projectId: project.id,
        action: `instances.${verb}`,
        target: instance.name,
        detail: { instance: instance.id, operation: op },
      });
      return { operation: op };
    });
}

export const instancesRouter = router({
  /**
   * Places the instance (the named cluster; else, among the region's or all clusters, the one
   * with the most free memory whose allocator places it), claims its share of the project's
   * quota with its record, and starts its create there. A refusal by the cluster gives the
   * share back and leaves nothing recorded.
   */
  create: procedure
    .meta(at(PROJECT_WRITE, 'POST /projects/{project}/instances'))
    .input(instanceCreateInput)
    .output(instanceCreateOut)
    .mutation(async ({ ctx, input }) => {
      const { instance, vm, operation } = await createInstance(ctx, input);
      return { instance: view(instance, vm), operation };
    }),

  get: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/instances/{name}'))
    .input(byInstance)
    .output(instanceOut)
    .query(async ({ ctx, input }) => {
      const { instance, driver } = await instanceAt(ctx, input);
      return view(instance, await seen(driver, instance));
    }),

  /**
   * A page of the project's instances by name, from every cluster, each with its state as its
   * cluster tells it: one that does not answer shows its instances as `unknown`, not gone.
   */
  list: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/instances'))
    .input(instanceListInput)
    .output(z.array(instanceOut))
    .query(async ({ ctx, input }) => {
      const project = await projectOf(ctx, input.project);
      const page = await listInstances(ctx.sql, project.id, input);
      // One call per cluster for the whole page, all at once: a cluster that does not answer
      // shows its instances as `unknown`.
      const clusters = await knownClusters(ctx);
      const held = new Map<string, InstanceRecord[]>();
      for (const i of page) held.set(i.cluster, [...(held.get(i.cluster) ?? []), i]);
      const answers = new Map<string, Map<string, ClusterVm> | 'unknown'>();
      await Promise.all(
        clusters
          .filter((c) => held.has(c.name))
          .map(async (c) => {
            const names = held.get(c.name)!.map((i) => i.vmName);
            const vms = await clusterDriver(ctx, c)
              .getVms(names)
              .catch((err: unknown) => {
                if (err instanceof ClusterUnreachableError) return 'unknown' as const;
                throw err;
              });
            answers.set(c.name, vms === 'unknown' ? vms : new Map(vms.map((v) => [v.name, v])));
          }),
      );
      return page.map((instance) => {
        const vms = answers.get(instance.cluster) ?? 'unknown';
        return view(instance, vms === 'unknown' ? vms : (vms.get(instance.vmName) ?? null));
      });
    }),

  start: operation('start'),
  stop: operation('stop'),
  shutdown: operation('shutdown'),
  reboot: operation('reboot'),
  reprovision: operation('reprovision'),

  /**
   * Decommissions the instance's VM (its disks wiped) and gives its share of the quota back;
   * its name is free again at once. A VM its cluster no longer has is only forgotten.
   */
  delete: procedure
    .meta(at(PROJECT_WRITE, 'DELETE /projects/{project}/instances/{name}'))
    .input(byInstance)
    .output(instanceDeleteOut)
    .mutation(async ({ ctx, input }) => {
      const { project, instance, driver } = await instanceAt(ctx, input);
      if (instance.acceptedAt === null) {
        // Its create has had no answer: only once its VM shows is there one to decommission.
        if ((await driver.getVm(instance.vmName)) === null) {
          throw new CloudPreconditionError(
            `instance ${instance.name} is pending: its create has not been taken yet; delete ` +
              'it once its VM shows, or its share is given back if its cluster never makes it',
          );
        }
        await acceptInstance(ctx.sql, instance.id);
      }
      const op = await driver.operate(instance.vmName, 'decommission').catch((err: unknown) => {
        if ((err as { code?: string }).code === 'NOT_FOUND') return null;
        throw err;
      });
      await releaseInstance(ctx.sql, actorOf(ctx), instance, project.id, 'delete', {
        operation: op,
      });
      return { name: instance.name, deleted: true, operation: op };
    }),

  /**
   * What was asked of the instance, newest first (a deleted one's too, by its last name): its
   * create, its operations and its delete, each with who asked and the cluster's operation.
   */
  operations: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/instances/{name}/operations'))
    .input(instanceOperationsInput)
    .output(instanceOperationsOut)
    .query(async ({ ctx, input }) => {
      const project = await projectOf(ctx, input.project);
      const { instance } = await getInstance(ctx.sql, project.id, input.name, { deleted: true });
      const events = await instanceEvents(ctx.sql, project.id, instance.id, input.limit);
      return events.map((e) => ({
        id: e.id,
        at: e.at,
        user: e.user,
        action: e.action,
        operation: operationOut.safeParse(e.detail.operation).data ?? null,
      }));
    }),

  /**
   * An operation of the instance's, as its cluster tells it: status, progress, UI link; of a
   * deleted instance's, by its name, until another instance takes the name.
   */
  operation: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/instances/{name}/operations/{id}'))
    .input(instanceOperationInput)
    .output(operationDetailOut)
    .query(async ({ ctx, input }) => {
      // A deleted instance's too: its decommission goes on after the delete is answered.
      const { instance, driver } = await instanceAt(ctx, input, { deleted: true });
      // Only the instance's own VM workflow: no other operation of the cluster is the caller's.
      if (input.id !== vmWorkflowId(instance.vmName)) {
        throw new CloudNotFoundError('operation', input.id);
      }
      return driver.operation({ id: input.id, runId: input.runId, updateId: input.updateId });
    }),
});
