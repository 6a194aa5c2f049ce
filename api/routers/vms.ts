import { WithStartWorkflowOperation } from '@temporalio/client';
import { TRPCError } from '@trpc/server';
import type { Sql } from '../../registry/db.ts';
import { hostExists } from '../../registry/hosts.ts';
import { checkedPool } from '../../registry/claim-vm.ts';
import { getVm, listVms, type VmRequest } from '../../registry/vms.ts';
import { InvalidRequestError, KeyConflictError, NotFoundError } from '../../registry/errors.ts';
import { claimedUpdate, createVm, decommissionVm } from '../../workflows/index.ts';
import { toOperation } from '../operations.ts';
import { byName, vmCreateInput } from '../schemas.ts';
import type { z } from 'zod';
import { publicProcedure, router } from '../trpc.ts';

/**
 * What the schema cannot see: the named host and networks exist and each given IP is usable.
 * Checked before any workflow starts, so a bad request leaves no trace (the claim checks again).
 */
async function checkReferences(sql: Sql, input: z.infer<typeof vmCreateInput>): Promise<void> {
  const hint = input.placement.host;
  if (hint !== undefined && !(await hostExists(sql, hint))) {
    throw new InvalidRequestError('placement.host', `no host named ${hint}`);
  }
  for (const [i, nic] of input.nics.entries()) await checkedPool(sql, nic, i);
}

export const vmsRouter = router({
  /**
   * Returns once the VM's name and keys are claimed (or refused, with CONFLICT); placing and
   * booting go on in the workflow, which `operation` names.
   */
  create: publicProcedure.input(vmCreateInput).mutation(async ({ ctx, input }) => {
    const existing = await getVm(ctx.sql, input.name).catch((err: unknown) => {
      if (err instanceof NotFoundError) return null;
      throw err;
    });
    // Settled VMs have no create running to join: refuse at once rather than start a doomed run.
    if (existing && (existing.state === 'running' || existing.state === 'failed')) {
      throw new KeyConflictError(`name:${input.name}`, `vm ${input.name}`);
    }
    await checkReferences(ctx.sql, input);
    const request: VmRequest = {
      name: input.name,
      vcpus: input.vcpus,
      memoryMiB: input.memoryMiB,
      diskGiB: input.diskGiB,
      nics: input.nics,
      tags: input.tags,
      placement: input.placement,
    };
    const start = new WithStartWorkflowOperation(createVm, {
      args: [{ request }],
      taskQueue: ctx.taskQueue,
      workflowId: `vm:${input.name}:create`,
      staticSummary: `create VM ${input.name}: ${input.vcpus} vCPU, ${input.memoryMiB} MiB, ${input.nics.length} NIC`,
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

  get: publicProcedure.input(byName).query(({ ctx, input }) => getVm(ctx.sql, input.name)),

  list: publicProcedure.query(({ ctx }) => listVms(ctx.sql)),

  decommission: publicProcedure.input(byName).mutation(async ({ ctx, input }) => {
    const vm = await getVm(ctx.sql, input.name);
    if (vm.state !== 'running' && vm.state !== 'failed' && vm.state !== 'decommissioning') {
      throw new TRPCError({
        code: 'PRECONDITION_FAILED',
        message: `vm ${vm.name} is ${vm.state}; wait for its ${vm.operation?.kind ?? 'operation'} to finish`,
      });
    }
    const handle = await ctx.temporal.workflow.start(decommissionVm, {
      args: [{ vmId: vm.id, name: vm.name }],
      taskQueue: ctx.taskQueue,
      workflowId: `vm:${vm.name}:decommission`,
      staticSummary: `decommission VM ${vm.name}${vm.host ? ` on ${vm.host}` : ''}`,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    const ref = {
      kind: 'decommission',
      workflowId: handle.workflowId,
      runId: handle.firstExecutionRunId,
    };
    return { operation: toOperation(ref, ctx.temporalUiUrl, ctx.namespace) };
  }),
});
