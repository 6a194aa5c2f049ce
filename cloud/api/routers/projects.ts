import { CloudNotFoundError } from '../../errors.ts';
import { seesProject } from '../../authorize.ts';
import { projectEvents } from '../../store/events.ts';
import {
  addMember,
  createProject,
  deleteProject,
  getProject,
  listProjects,
  projectMembers,
  removeMember,
} from '../../store/projects.ts';
import {
  eventsOut,
  membersOut,
  projectCreateOut,
  projectDeleteOut,
  projectGetOut,
  projectListOut,
} from '../outputs.ts';
import { actorOf, projectOf } from '../context.ts';
import {
  byProject,
  memberAddInput,
  memberRemoveInput,
  projectCreateInput,
  projectEventsInput,
} from '../schemas.ts';
import { ADMIN_WRITE, PROJECT_READ, USER_READ, procedure, router, routes } from '../trpc.ts';

const at = routes('projects');

export const projectsRouter = router({
  create: procedure
    .meta(at(ADMIN_WRITE, 'POST /projects'))
    .input(projectCreateInput)
    .output(projectCreateOut)
    .mutation(({ ctx, input }) => createProject(ctx.sql, actorOf(ctx), input.project)),

  /** The projects the caller sees: an admin all, anyone else those it belongs to. */
  list: procedure
    .meta(at(USER_READ, 'GET /projects'))
    .output(projectListOut)
    .query(async ({ ctx }) => {
      const { caller } = ctx;
      const ids =
        caller.project !== null
          ? [caller.project]
          : caller.admin
            ? null
            : Object.keys(caller.roles);
      const projects = await listProjects(ctx.sql, ids);
      // What the caller may do there with this token, not what its user may.
      const role = (id: string) =>
        caller.readOnly ? 'reader' : caller.admin ? 'admin' : caller.roles[id]!;
      return projects
        .filter((p) => seesProject(caller, p.id))
        .map((p) => ({ ...p, role: role(p.id) }));
    }),

  get: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}'))
    .input(byProject)
    .output(projectGetOut)
    .query(async ({ ctx, input }) => {
      const project = await getProject(ctx.sql, input.project);
      // The project the token was checked against, not one made since under its name.
      if (project.id !== (await projectOf(ctx, input.project)).id) {
        throw new CloudNotFoundError('project', input.project);
      }
      return { ...project, members: await projectMembers(ctx.sql, project.id) };
    }),

  delete: procedure
    .meta(at(ADMIN_WRITE, 'DELETE /projects/{project}'))
    .input(byProject)
    .output(projectDeleteOut)
    .mutation(async ({ ctx, input }) => {
      await deleteProject(ctx.sql, actorOf(ctx), input.project);
      return { project: input.project, deleted: true };
    }),

  addMember: procedure
    .meta(at(ADMIN_WRITE, 'POST /projects/{project}/members'))
    .input(memberAddInput)
    .output(membersOut)
    .mutation(({ ctx, input }) => addMember(ctx.sql, actorOf(ctx), input)),

  removeMember: procedure
    .meta(at(ADMIN_WRITE, 'DELETE /projects/{project}/members/{user}'))
    .input(memberRemoveInput)
    .output(membersOut)
    .mutation(({ ctx, input }) => removeMember(ctx.sql, actorOf(ctx), input)),

  /** Every change made in the project, newest first: who (user, token), what, when. */
  events: procedure
    .meta(at(PROJECT_READ, 'GET /projects/{project}/events'))
    .input(projectEventsInput)
    .output(eventsOut)
    .query(async ({ ctx, input }) => {
      const project = await projectOf(ctx, input.project);
      return projectEvents(ctx.sql, project.id, { limit: input.limit, before: input.before });
    }),
});
