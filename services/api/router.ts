import { ensureSchedule, scheduleId } from '../schedules.ts';
import {
  createService,
  getService,
  listServices,
  markDeleting,
  membersOf,
  serviceEvents,
  ServiceConflictError,
  updateService,
  type Service,
} from '../store.ts';
import type { AuthedServicesContext } from './context.ts';
import {
  byProject,
  byService,
  serviceCreateInput,
  serviceEventsInput,
  serviceUpdateInput,
} from './schemas.ts';
import { createServicesCallerFactory, procedure, READ, router, WRITE } from './trpc.ts';

/**
 * A service as a caller may see it: its template without the user-data and keys the cloud
 * never answers either (only whether there are some).
 */
function shown(service: Service) {
  const { userData, sshAuthorizedKeys, ...template } = service.template;
  return {
    ...service,
    template: {
      ...template,
      userData: userData === undefined ? null : ('(set)' as const),
      sshAuthorizedKeys: sshAuthorizedKeys?.length ?? 0,
    },
  };
}

/** Its schedule as declared, made again if it went missing, and run now. */
async function scheduled(ctx: AuthedServicesContext, service: Service) {
  await ensureSchedule(ctx.temporal, service);
}

/** A service with its members and when its schedule runs next. */
async function detail(ctx: AuthedServicesContext, project: string, name: string) {
  const service = await getService(ctx.sql, project, name);
  const schedule = await ctx.temporal.schedule
    .getHandle(scheduleId(project, name))
    .describe()
    .then(
      (d) => ({
        id: d.scheduleId,
        paused: d.state.paused,
        nextRun: d.info.nextActionTimes[0] ?? null,
      }),
      () => null,
    );
  return { ...shown(service), members: await membersOf(ctx.sql, service.id), schedule };
}

/**
 * The service layer's API: a project's members declare services; a Temporal Schedule per
 * service keeps each as declared (services/workflows.ts).
 */
export const servicesRouter = router({
  services: router({
    /**
     * Records the service with a token of the caller's narrowed to the project (what its
     * reconciles act with), makes its schedule and runs its first reconcile at once.
     */
    create: procedure
      .meta(WRITE)
      .input(serviceCreateInput)
      .mutation(async ({ ctx, input }) => {
        const { project, name, ...spec } = input;
        // A name taken is refused before a token is made for it.
        const taken = await getService(ctx.sql, project, name).then(
          () => true,
          () => false,
        );
        if (taken) throw new ServiceConflictError(`service ${name} exists in project ${project}`);
        const minted = await ctx.cloud.mintToken(`service-${name}`, project);
        const made = await createService(ctx.sql, {
          ...spec,
          project,
          name,
          health: null,
          createdBy: ctx.caller.user,
          token: minted.token,
        }).catch(async (err: unknown) => {
          await ctx.cloud.revokeToken(minted.id).catch(() => {});
          throw err;
        });
        await scheduled(ctx, made);
        return detail(ctx, project, name);
      }),

    list: procedure
      .meta(READ)
      .input(byProject)
      .query(async ({ ctx, input }) => (await listServices(ctx.sql, input.project)).map(shown)),

    get: procedure
      .meta(READ)
      .input(byService)
      .query(({ ctx, input }) => detail(ctx, input.project, input.name)),

    /** Scale, roll a new template forward, or change its bounds; reconciled at once. */
    update: procedure
      .meta(WRITE)
      .input(serviceUpdateInput)
      .mutation(async ({ ctx, input: { project, name, ...change } }) => {
        const updated = await updateService(ctx.sql, { project, name }, ctx.caller.user, change);
        // A paused service changes nothing until resumed.
        if (!updated.paused) await scheduled(ctx, updated);
        return detail(ctx, project, name);
      }),

    pause: procedure
      .meta(WRITE)
      .input(byService)
      .mutation(async ({ ctx, input }) => {
        const paused = await updateService(ctx.sql, input, ctx.caller.user, { paused: true });
        await scheduled(ctx, paused);
        await ctx.temporal.schedule.getHandle(scheduleId(input.project, input.name)).pause();
        return detail(ctx, input.project, input.name);
      }),

    resume: procedure
      .meta(WRITE)
      .input(byService)
      .mutation(async ({ ctx, input }) => {
        const resumed = await updateService(ctx.sql, input, ctx.caller.user, { paused: false });
        await ctx.temporal.schedule
          .getHandle(scheduleId(input.project, input.name))
          .unpause()
          .catch(() => {});
        await scheduled(ctx, resumed);
        return detail(ctx, input.project, input.name);
      }),

    /** Its reconciles delete every instance, then the service and its schedule go. */
    delete: procedure
      .meta(WRITE)
      .input(byService)
      .mutation(async ({ ctx, input }) => {
        const service = await getService(ctx.sql, input.project, input.name);
        await markDeleting(ctx.sql, service.id, ctx.caller.user);
        await ctx.temporal.schedule
          .getHandle(scheduleId(input.project, input.name))
          .unpause()
          .catch(() => {});
        // Made again if it went missing: a delete must be carried out.
        await scheduled(ctx, { ...service, paused: false });
        return { project: input.project, name: input.name, deleting: true };
      }),

    events: procedure
      .meta(READ)
      .input(serviceEventsInput)
      .query(async ({ ctx, input }) => {
        const service = await getService(ctx.sql, input.project, input.name);
        return serviceEvents(ctx.sql, service.id, input.limit);
      }),
  }),
});

export type ServicesRouter = typeof servicesRouter;
export const createServicesCaller = createServicesCallerFactory(servicesRouter);
