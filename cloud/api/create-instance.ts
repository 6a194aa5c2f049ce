import { TRPCError } from '@trpc/server';
import type { z } from 'zod';
import { CloudConflictError, ClusterUnreachableError } from '../errors.ts';
import { acceptInstance, claimInstance, releaseInstance, vmNameOf } from '../store/instances.ts';
import { recordEvent } from '../store/events.ts';
import { chooseCluster } from './choose-cluster.ts';
import { actorOf, projectOf, type AuthedContext } from './context.ts';
import type { instanceCreateInput } from './schemas.ts';

/** A cluster's answers that say the create was not taken: nothing of it was made there. */
const REFUSALS = new Set([
  'BAD_REQUEST',
  'NOT_FOUND',
  'CONFLICT',
  'PRECONDITION_FAILED',
  'FORBIDDEN',
  'UNPROCESSABLE_CONTENT',
  'PAYLOAD_TOO_LARGE',
]);

/**
 * A cluster's refusal in words fit for the caller: a name or address another VM holds is said
 * to be taken, without naming the holder (another project's instance).
 */
function refusalForCaller(err: TRPCError): TRPCError {
  const message = err.message.replace(/ is already held by .*$/s, ' is taken');
  return message === err.message ? err : new TRPCError({ code: err.code, message });
}

/**
 * Places the instance, claims its share of the project's quota with its record, and starts its
 * create in the chosen cluster. A refusal by the cluster forgets the record (its share back).
 * Any other failure (no answer, an error of the cluster's own) may have come after the create
 * was taken: the record stays, `pending`, for the reconciler (cloud/reconciler.ts) to adopt
 * once its VM shows or to give back once the cluster says it will not make it.
 */
export async function createInstance(
  ctx: AuthedContext,
  input: z.output<typeof instanceCreateInput>,
) {
  const project = await projectOf(ctx, input.project);
  const { cluster, driver, placement } = await chooseCluster(ctx, project, input);
  const actor = actorOf(ctx);
  const instance = await claimInstance(ctx.sql, actor, {
    projectId: project.id,
    project: project.name,
    name: input.name,
    clusterId: cluster.id,
    vcpus: input.vcpus,
    memoryMiB: input.memoryMiB,
    diskGiB: input.diskGiB,
    ips: input.nics.length,
    image: input.image,
  });
  const vmName = vmNameOf(project.name, input.name);
  let made;
  try {
    made = await driver.createVm({
      name: vmName,
      vcpus: input.vcpus,
      memoryMiB: input.memoryMiB,
      image: input.image,
      diskGiB: input.diskGiB,
      nics: input.nics,
      sshAuthorizedKeys: input.sshAuthorizedKeys,
      ...(input.userData === undefined ? {} : { userData: input.userData }),
      placement,
      tags: { 'vagoth.cloud/project': project.name, 'vagoth.cloud/instance': input.name },
    });
  } catch (err) {
    if (err instanceof TRPCError && REFUSALS.has(err.code)) {
      await releaseInstance(ctx.sql, actor, instance, project.id, 'forget');
      throw refusalForCaller(err);
    }
    if (err instanceof ClusterUnreachableError) {
      throw new ClusterUnreachableError(
        cluster.name,
        `no answer to the create of ${input.name}, which stays recorded (pending): its state ` +
          'shows once the cluster answers',
        { cause: err },
      );
    }
    throw err;
  }
  if (!(await acceptInstance(ctx.sql, instance.id))) {
    // Given back meanwhile (the reconciler, after long without an answer): its VM is no one's.
    await driver.operate(vmName, 'decommission').catch(() => {});
    throw new CloudConflictError(
      `instance ${input.name} was given back while its create was under way; its VM is removed`,
    );
  }
  await recordEvent(ctx.sql, actor, {
    projectId: project.id,
    action: 'instances.create-taken',
    target: input.name,
    detail: { instance: instance.id, cluster: cluster.name, operation: made.operation },
  });
  return { instance, vm: made.vm, operation: made.operation };
}
