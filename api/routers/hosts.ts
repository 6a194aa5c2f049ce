import { getHost, listHosts } from '../../registry/hosts.ts';
import { registerHost } from '../../workflows/index.ts';
import { byName, hostRegisterInput } from '../schemas.ts';
import { publicProcedure, router } from '../trpc.ts';

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
});
