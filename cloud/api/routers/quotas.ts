import { projectQuota, setQuota } from '../../store/quotas.ts';
import { getProject } from '../../store/projects.ts';
import { quotaOut } from '../outputs.ts';
import { actorOf, projectOf } from '../context.ts';
import { byProject, quotaSetInput } from '../schemas.ts';
import { ADMIN_WRITE, PROJECT_READ, procedure, router, routes } from '../trpc.ts';

const at = routes('quotas');

export const quotasRouter = router({
  /** Limits on what the project's instances may use; null: no limit. Only new creates check it. */
  set: procedure
    .meta(at(ADMIN_WRITE, 'PATCH /projects/{project}/quota'))
    .input(quotaSetInput)
    .output(quotaOut)
    .mutation(async ({ ctx, input: { project: name, ...quota } }) => {
      const project = await getProject(ctx.sql, name);
      await setQuota(ctx.sql, actorOf(ctx), project.id, quota);
      return { project: name, ...(await projectQuota(ctx.sql, project.id)) };
    }),

  /** The project's limits, and what its live instances use. */
  get: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/quota'))
    .input(byProject)
    .output(quotaOut)
    .query(async ({ ctx, input }) => {
      const project = await projectOf(ctx, input.project);
      return { project: input.project, ...(await projectQuota(ctx.sql, project.id)) };
    }),
});
