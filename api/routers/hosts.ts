import {
  ScheduleNotFoundError,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { attributePairs } from '../../common/search-attributes.ts';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import {
  hostRegisterWorkflowId,
  hostWorkflowId,
  monitorPollWorkflowId,
} from '../../common/vocabulary.ts';
import { checkHostUri, HostUriError } from '../../drivers/host-uri.ts';
import type { ReconcilePolicies } from '../../monitor/reconcile.ts';
import { getHost, listHosts, removeHost } from '../../registry/hosts.ts';
import { lastReport } from '../../registry/monitor.ts';
import { MONITOR_SCHEDULE_ID } from '../../workers/schedules.ts';
import {
  hostActivateUpdate,
  hostEntity,
  hostEvacuateUpdate,
  hostMaintenanceUpdate,
  monitorCluster,
  registerHost,
  type MonitorInput,
} from '../../workflows/index.ts';
import { byName, hostEvacuateInput, hostRegisterInput, nameSchema } from '../schemas.ts';
import type { Context } from '../context.ts';
import { procedure, router } from '../trpc.ts';

/**
 * The cluster's policies are the ones its monitor schedule runs with (set from the workers'
 * configuration at their start-up), so a poll on demand acts as the scheduled ones do.
 * Without a schedule it only reports.
 */
async function clusterPolicies(temporal: Client): Promise<ReconcilePolicies | undefined> {
  try {
    const { action } = await temporal.schedule.getHandle(MONITOR_SCHEDULE_ID).describe();
    const [input] = action.type === 'startWorkflow' ? (action.args as MonitorInput[]) : [];
    return input?.policies;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/** The Update reached a run of the host's workflow as it ended: a new run will take it. */
function endedUnderIt(err: unknown): boolean {
  if (err instanceof WorkflowUpdateFailedError) return false; // the operation's own answer
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof WorkflowNotFoundError || /already completed/i.test(e.message)) return true;
  }
  return false;
}

/**
 * Sends one of the host's operations to its workflow `host:<name>` (workflows/host-entity.ts),
 * starting it if none runs: every state change of one host goes through that one workflow,
 * which runs them one at a time and decides how they meet (a second drain joins the first,
 * activate stops a drain). It ends once idle, so an Update can arrive just as a run ends;
 * that one is sent again, to the next run.
 */
async function onHost<R>(ctx: Context, name: string, update: UpdateDefinition<R, []>) {
  for (let attempt = 1; ; attempt++) {
    const start = new WithStartWorkflowOperation(hostEntity, {
      args: [{ name }],
      taskQueue: ctx.taskQueue,
      workflowId: hostWorkflowId(name),
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `operations on host ${name}`,
      typedSearchAttributes: attributePairs({ VagothKind: 'host', VagothHost: name }),
    });
    try {
      return await ctx.temporal.workflow.executeUpdateWithStart(update, {
        startWorkflowOperation: start,
      });
    } catch (err) {
      if (attempt < 5 && endedUnderIt(err)) continue;
      throw err;
    }
  }
}

/** A URI the operator's policy refuses: BAD_REQUEST naming `uri`, as the input schema does. */
function refuseUri(check: () => void): void {
  try {
    check();
  } catch (err) {
    if (!(err instanceof HostUriError)) throw err;
    const issues = new z.ZodRealError([
      { code: 'custom', path: ['uri'], message: err.message, input: undefined },
    ]);
    throw new TRPCError({ code: 'BAD_REQUEST', message: `uri: ${err.message}`, cause: issues });
  }
}

export const hostsRouter = router({
  /** Records a host; its capacity is read through its driver by a workflow. */
  register: procedure.input(hostRegisterInput).mutation(async ({ ctx, input }) => {
    if (ctx.hostUris) refuseUri(() => checkHostUri(input.driver, input.uri, ctx.hostUris!));
    return ctx.temporal.workflow.execute(registerHost, {
      args: [input],
      taskQueue: ctx.taskQueue,
      // A retried request joins the registration already under way.
      workflowId: hostRegisterWorkflowId(input.name),
      staticSummary: `register host ${input.name} (${input.uri})`,
      typedSearchAttributes: attributePairs({ VagothKind: 'host', VagothHost: input.name }),
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  }),

  list: procedure.query(({ ctx }) => listHosts(ctx.sql)),

  get: procedure.input(byName).query(({ ctx, input }) => getHost(ctx.sql, input.name)),

  /** Runs the monitor now, on one host or all, and answers its report. */
  poll: procedure
    .input(z.object({ name: nameSchema.optional() }).strict().default({}))
    .mutation(async ({ ctx, input }) => {
      if (input.name !== undefined) await getHost(ctx.sql, input.name);
      const policies = await clusterPolicies(ctx.temporal);
      const args: MonitorInput = {
        ...(input.name !== undefined ? { hosts: [input.name] } : {}),
        ...(policies ? { policies } : {}),
      };
      return ctx.temporal.workflow.execute(monitorCluster, {
        args: [args],
        taskQueue: ctx.taskQueue,
        // Polls asked for while one of the same scope runs join it instead of doubling it.
        workflowId: monitorPollWorkflowId(input.name),
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `poll ${input.name ? `host ${input.name}` : 'every host'}`,
        typedSearchAttributes: attributePairs({
          VagothKind: 'monitor',
          ...(input.name !== undefined ? { VagothHost: input.name } : {}),
        }),
      });
    }),

  /**
   * Takes the host out of placement and migrates its VMs away; answers the drain's report
   * (moved, and those that stayed with why). A request while a drain is under way (a retry,
   * or another operator) joins it.
   */
  maintenance: procedure.input(byName).mutation(async ({ ctx, input }) => {
    await getHost(ctx.sql, input.name); // NOT_FOUND before any workflow starts
    return onHost(ctx, input.name, hostMaintenanceUpdate);
  }),

  /**
   * Back into placement. During a drain it stops the drain first: no further VM starts moving,
   * those moving finish, then the host is active (the drain's report lists the rest as
   * stayed). Refused (PRECONDITION_FAILED) while the host is being evacuated. Whatever the
   * state (maintenance, or down whether the monitor or an operator set it), the operator's
   * word is taken: the monitor marks it down again if it still does not answer. Leaving
   * `down` also clears the monitor's own mark (a trigger).
   */
  activate: procedure.input(byName).mutation(async ({ ctx, input }) => {
    await getHost(ctx.sql, input.name);
    await onHost(ctx, input.name, hostActivateUpdate);
    return getHost(ctx.sql, input.name);
  }),

  /** Forgets an empty host; PRECONDITION_FAILED, with how many remain, while VMs are on it. */
  remove: procedure.input(byName).mutation(async ({ ctx, input }) => {
    await removeHost(ctx.sql, input.name, { actor: 'api', operation: null });
    return { removed: input.name };
  }),

  /**
   * Restarts a fenced host's VMs elsewhere; answers the report. `fenced: true` is the caller's
   * word that the host can run nothing any more (powered off, cut off): without fencing a
   * host that is merely unreachable may still run its VMs, and evacuating makes two copies.
   */
  evacuate: procedure.input(hostEvacuateInput).mutation(async ({ ctx, input }) => {
    await getHost(ctx.sql, input.name);
    return onHost(ctx, input.name, hostEvacuateUpdate);
  }),

  /** The last monitor run's report (scheduled or asked for), or null before the first. */
  monitor: procedure.query(({ ctx }) => lastReport(ctx.sql)),
});
