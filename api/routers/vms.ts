import { isRefusal, seesUpdateOutcomes, settledAtOnce } from '../update-outcomes.ts';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { attributePairs } from '../../common/search-attributes.ts';
import { createAttributes } from '../../workflows/vm-window.ts';
import { TRPCError } from '@trpc/server';
import { vmWorkflowId } from '../../common/vocabulary.ts';
import type { Sql } from '../../registry/db.ts';
import { hostExists } from '../../registry/hosts.ts';
import { checkedPool } from '../../registry/claim-vm.ts';
import { getImage, usableImage } from '../../registry/images.ts';
import type { GuestConfig, VmImage } from '../../registry/types.ts';
import { getVm, listVms, type VmRequest } from '../../registry/vms.ts';
import { InvalidRequestError, KeyConflictError, nullIfNotFound } from '../../registry/errors.ts';
import {
  claimedUpdate,
  decommissionUpdate,
  migrateUpdate,
  operationQuery,
  rebootUpdate,
  reprovisionUpdate,
  shutdownUpdate,
  startUpdate,
  stopUpdate,
  vmEntity,
  type OperationOutcome,
} from '../../workflows/index.ts';
import { revisionMemo } from '../../workflows/revisions.ts';
import { toOperation } from '../operations.ts';
import {
  byName,
  vmCreateInput,
  vmMigrateInput,
  vmShutdownInput,
  vmWipesInput,
  vmListInput,
} from '../schemas.ts';
import { wipesOf } from '../../registry/volume-wipes.ts';
import type { z } from 'zod';
import type { UpdateDefinition } from '@temporalio/common';
import { procedure, router } from '../trpc.ts';

/**
 * What the schema cannot see: the named host and networks exist and each given IP is usable.
 * Checked before any workflow starts, so a bad request leaves no trace (the claim checks again).
 */
/**
 * What the request names, checked to exist before anything is claimed: the placement host,
 * each NIC's network, and the image (NOT_FOUND when there is none by that name; refused while
 * it is not ready, or when the root disk would be smaller than the image's own disk).
 */
async function checkReferences(
  sql: Sql,
  input: z.infer<typeof vmCreateInput>,
): Promise<{ image?: VmImage; diskGiB: number }> {
  const hint = input.placement.host;
  if (hint !== undefined && !(await hostExists(sql, hint))) {
    throw new InvalidRequestError('placement.host', `no host named ${hint}`);
  }
  for (const [i, nic] of input.nics.entries()) await checkedPool(sql, nic, i);
  if (input.image === undefined) return { diskGiB: input.diskGiB };
  const image = await usableImage(sql, await getImage(sql, input.image));
  const needed = Math.ceil(image.virtualSize / GiB);
  if (input.diskGiB === 0) return { image, diskGiB: needed };
  if (input.diskGiB * GiB < image.virtualSize) {
    throw new InvalidRequestError(
      'diskGiB',
      `${input.diskGiB} GiB is smaller than image ${image.name}'s ${image.virtualSize} bytes: give at least ${needed}`,
    );
  }
  return { image, diskGiB: input.diskGiB };
}

const GiB = 1024 ** 3;

function guestConfig(input: z.infer<typeof vmCreateInput>): GuestConfig {
  return {
    sshAuthorizedKeys: input.sshAuthorizedKeys,
    ...(input.userData !== undefined ? { userData: input.userData } : {}),
  };
}

export interface OperationContext {
  sql: Sql;
  temporal: Client;
  temporalUiUrl: string;
  namespace: string;
}

/**
 * Sends the operation to the VM's entity workflow and answers once it is accepted (validated
 * and in history), not when it is done: `operations.get` follows it, so a long migrate or
 * wipe holds no HTTP request open. A validator's refusal (OperationRejected) becomes
 * PRECONDITION_FAILED with the reason, and nothing is recorded.
 */
export async function operate<A extends unknown[]>(
  ctx: OperationContext,
  name: string,
  update: UpdateDefinition<OperationOutcome, A>,
  args: A,
  updateId?: string,
) {
  const workflow = ctx.temporal.workflow.getHandle(vmWorkflowId(name));
  const options = {
    waitForStage: 'ACCEPTED' as const,
    ...(updateId === undefined ? {} : { updateId }),
  };
  const handle = await (
    args.length === 0
      ? workflow.startUpdate<OperationOutcome, []>(update.name, options)
      : workflow.startUpdate<OperationOutcome, [unknown]>(update.name, {
          ...options,
          args: [args[0]],
        })
  ).catch(async (err: unknown) => {
    // The registry says whether the VM exists (NOT_FOUND, by its name), asked only when the
    // update could not be sent: no round trip before every operation.
    await getVm(ctx.sql, name);
    throw err;
  });
  // A validator's refusal also answers at the ACCEPTED stage, carrying its failure.
  if (seesUpdateOutcomes(ctx.temporal)) {
    if (settledAtOnce(handle.updateId)) {
      // Refused, or already done: an accepted operation that failed is operations.get's to tell.
      await handle.result().catch((err: unknown) => {
        if (isRefusal(err)) throw err;
      });
    }
  } else if (!(await workflow.query(operationQuery, handle.updateId))) {
    // A client without the interceptor asks the workflow: an accepted operation is always in
    // its record, a refused one never is.
    await handle.result();
  }
  const ref = {
    kind: update.name,
    workflowId: handle.workflowId,
    runId: handle.workflowRunId ?? '',
    updateId: handle.updateId,
  };
  return { operation: toOperation(ref, ctx.temporalUiUrl, ctx.namespace) };
}

export const vmsRouter = router({
  /**
   * Returns once the VM's name and keys are claimed (or refused, with CONFLICT); placing and
   * booting go on in the VM's workflow, whose `create` operation `operation` names.
   */
  create: procedure.input(vmCreateInput).mutation(async ({ ctx, input }) => {
    const existing = await getVm(ctx.sql, input.name).catch(nullIfNotFound);
    // A VM past its create has no claim to join: refuse at once rather than ask its workflow.
    if (existing && existing.operation?.kind !== 'create') {
      throw new KeyConflictError(`name:${input.name}`, `vm ${input.name}`);
    }
    const { image, diskGiB } = await checkReferences(ctx.sql, input);
    const request: VmRequest = {
      name: input.name,
      vcpus: input.vcpus,
      memoryMiB: input.memoryMiB,
      diskGiB,
      nics: input.nics,
      tags: input.tags,
      placement: input.placement,
      ...(image ? { image, guest: guestConfig(input) } : {}),
      ...(input.disks.length > 0 ? { disks: input.disks } : {}),
    };
    const start = new WithStartWorkflowOperation(vmEntity, {
      args: [{ request, onFailure: input.onFailure }],
      taskQueue: ctx.taskQueue,
      workflowId: vmWorkflowId(input.name),
      memo: revisionMemo(),
      staticSummary: `VM ${input.name}: ${input.vcpus} vCPU, ${input.memoryMiB} MiB, ${input.nics.length} NIC`,
      typedSearchAttributes: attributePairs(createAttributes()),
      // A retried request reaches the run already under way (its update checks it is the same).
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    const vm = await ctx.temporal.workflow.executeUpdateWithStart(claimedUpdate, {
      args: [request],
      startWorkflowOperation: start,
    });
    if (!vm.operation)
      throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'VM has no operation' });
    return { vm, operation: toOperation(vm.operation, ctx.temporalUiUrl, ctx.namespace) };
  }),

  get: procedure.input(byName).query(({ ctx, input }) => getVm(ctx.sql, input.name)),

  list: procedure.input(vmListInput).query(({ ctx, input }) => listVms(ctx.sql, input?.names)),

  /**
   * How each of the VM's volumes was wiped and what reading it back found, oldest first; a
   * decommissioned VM's too, by its id or its last name.
   */
  wipes: procedure
    .input(vmWipesInput)
    .query(({ ctx, input }) =>
      wipesOf(ctx.sql, input.id !== undefined ? { id: input.id } : { name: input.name! }),
    ),

  /** Idempotent (running: nothing to do). */
  start: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, startUpdate, [])),

  /** Power off; idempotent (stopped: nothing to do). */
  stop: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, stopUpdate, [])),

  shutdown: procedure
    .input(vmShutdownInput)
    .mutation(({ ctx, input: { name, ...args } }) => operate(ctx, name, shutdownUpdate, [args])),

  reboot: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, rebootUpdate, [])),

  migrate: procedure.input(vmMigrateInput).mutation(async ({ ctx, input: { name, ...args } }) => {
    if (args.host !== undefined && !(await hostExists(ctx.sql, args.host))) {
      throw new InvalidRequestError('host', `no host named ${args.host}`);
    }
    return operate(ctx, name, migrateUpdate, [args]);
  }),

  reprovision: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, reprovisionUpdate, [])),

  /**
   * A VM is decommissioned once: the update id is fixed, so a retried request joins the one
   * already accepted instead of being refused.
   */
  decommission: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, decommissionUpdate, [], 'decommission')),
});
