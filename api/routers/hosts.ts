import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { ReconcilePolicies } from '../../monitor/reconcile.ts';
import { getHost, listHosts } from '../../registry/hosts.ts';
import { lastReport } from '../../registry/monitor.ts';
import { MONITOR_SCHEDULE_ID } from '../../workers/schedules.ts';
import { monitorCluster, registerHost, type MonitorInput } from '../../workflows/index.ts';
import { byName, hostRegisterInput, nameSchema } from '../schemas.ts';
import { publicProcedure, router } from '../trpc.ts';

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

export const hostsRouter = router({
  /** Records a host; its capacity is read through its driver by a workflow. */
  register: publicProcedure.input(hostRegisterInput).mutation(async ({ ctx, input }) => {
    return ctx.temporal.workflow.execute(registerHost, {
      args: [input],
      taskQueue: ctx.taskQueue,
      // A retried request joins the registration already under way.
      workflowId: `host:${input.name}:register`,
      staticSummary: `register host ${input.name} (${input.uri})`,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  }),

  list: publicProcedure.query(({ ctx }) => listHosts(ctx.sql)),

  get: publicProcedure.input(byName).query(({ ctx, input }) => getHost(ctx.sql, input.name)),

  /** Runs the monitor now, on one host or all, and answers its report. */
  poll: publicProcedure
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
        workflowId: `monitor:poll:${input.name ?? 'all'}`,
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `poll ${input.name ? `host ${input.name}` : 'every host'}`,
      });
    }),

  /** The last monitor run's report (scheduled or asked for), or null before the first. */
  monitor: publicProcedure.query(({ ctx }) => lastReport(ctx.sql)),
});
