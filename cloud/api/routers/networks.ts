import { getCluster } from '../../store/clusters.ts';
import { grantNetwork, projectNetworks } from '../../store/networks.ts';
import { getProject } from '../../store/projects.ts';
import { actorOf } from '../context.ts';
import { byProject, networkGrantInput } from '../schemas.ts';
import { ADMIN_WRITE, PROJECT_READ, procedure, router } from '../trpc.ts';

/** Which clusters' networks a project's instances may attach to. */
export const networksRouter = router({
  grant: procedure
    .meta(ADMIN_WRITE)
    .input(networkGrantInput)
    .mutation(async ({ ctx, input }) => {
      const project = await getProject(ctx.sql, input.project);
      const cluster = await getCluster(ctx.sql, input.cluster);
      await grantNetwork(ctx.sql, actorOf(ctx), {
        clusterId: cluster.id,
        network: input.network,
        projectId: project.id,
      });
      return projectNetworks(ctx.sql, project.id);
    }),

  list: procedure
    .meta(PROJECT_READ)
    .input(byProject)
    .query(async ({ ctx, input }) =>
      projectNetworks(ctx.sql, (await getProject(ctx.sql, input.project)).id),
    ),
});
