import { serviceClouds } from '../cloud-tokens.ts';
import { holdMinted, revokeQueued, revokeTokens } from '../revocations.ts';
import { ensureSchedule, scheduleId } from '../schedules.ts';
import {
  createService,
  forgetService,
  getService,
  listServices,
  markDeleting,
  membersOf,
  serviceEvents,
  ServiceConflictError,
  ServiceNotFoundError,
  updateService,
  type Service,
} from '../store.ts';
import type { AuthedServicesContext } from './context.ts';
import { checkOtherClouds, mintCloudTokens } from './other-clouds.ts';
import { keepServiceToken } from './service-token.ts';
import {
  byProject,
  byService,
  replicasOf,
  serviceCreateInput,
  serviceEventsInput,
  serviceUpdateInput,
} from './schemas.ts';
import { serviceDeleteOut, serviceDetailOut, serviceEventsOut, serviceListOut } from './outputs.ts';
import { createServicesCallerFactory, procedure, READ, router, routes, WRITE } from './trpc.ts';

const at = routes('services');

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
  const [members, clouds] = await Promise.all([
    membersOf(ctx.sql, service.id),
    serviceClouds(ctx.sql, service.id),
  ]);
  return { ...shown(service), members, clouds, schedule };
}

/**
 * The service layer's API: a project's members declare services; a Temporal Schedule per
 * service keeps each as declared (services/workflows.ts).
 */
export const servicesRouter = router({
  services: router({
    /**
     * Records the service with a token of the caller's narrowed to the project (what its
     * reconciles act with), and one in each other cloud its placements name (from the
     * credentials given there), makes its schedule and runs its first reconcile at once.
     */
    create: procedure
      .meta(at(WRITE, 'POST /projects/{project}/services'))
      .input(serviceCreateInput)
      .output(serviceDetailOut)
      .mutation(async ({ ctx, input }) => {
        const { project, name, clouds: given, ...spec } = input;
        checkOtherClouds(ctx.clouds, spec.placements, given, { everyOneNeeded: true });
        // A name taken is refused before a token is made for it.
        const taken = await getService(ctx.sql, project, name).then(
          () => true,
          (err: unknown) => {
            if (err instanceof ServiceNotFoundError) return false;
            throw err;
          },
        );
        if (taken) throw new ServiceConflictError(`service ${name} exists in project ${project}`);
        const label = `${project}/${name}`;
        const remote = await mintCloudTokens(ctx, { project, name }, given);
        const minted = await ctx.cloud
          .mintToken(`service-${name}`, project)
          .catch(async (err: unknown) => {
            await revokeTokens(ctx, label, remote);
            throw err;
          });
        const own = { cloud: null, token: minted.token, tokenId: minted.id };
        // Each revoked with itself, or queued to be: none outlives a create that failed.
        const unmint = () => revokeTokens(ctx, label, [...remote, own]);
        await holdMinted(ctx.sql, label, [own]).catch(async (err: unknown) => {
          await unmint();
          throw err;
        });
        const made = await createService(ctx.sql, {
          ...spec,
          replicas: replicasOf(input) ?? 0,
          project,
          name,
          createdBy: ctx.caller.user,
          token: minted.token,
          tokenId: minted.id,
          cloudTokens: remote,
        }).catch(async (err: unknown) => {
          await unmint();
          throw err;
        });
        await ensureSchedule(ctx.temporal, made).catch(async (err: unknown) => {
          // No schedule, no service: nothing of it is left half-made.
          await forgetService(ctx.sql, made.id);
          await unmint();
          throw err;
        });
        return detail(ctx, project, name);
      }),

    list: procedure
      .meta(at(READ, 'GET /projects/{project}/services'))
      .input(byProject)
      .output(serviceListOut)
      .query(async ({ ctx, input }) => (await listServices(ctx.sql, input.project)).map(shown)),

    get: procedure
      .meta(at(READ, 'GET /projects/{project}/services/{name}'))
      .input(byService)
      .output(serviceDetailOut)
      .query(({ ctx, input }) => detail(ctx, input.project, input.name)),

    /** Scale, roll a new template forward, or change its bounds; reconciled at once. */
    update: procedure
      .meta(at(WRITE, 'PATCH /projects/{project}/services/{name}'))
      .input(serviceUpdateInput)
      .output(serviceDetailOut)
      .mutation(async ({ ctx, input: { project, name, clouds: given, ...change } }) => {
        const placements =
          change.placements !== undefined || Object.keys(given).length === 0
            ? change.placements
            : (await getService(ctx.sql, project, name)).placements;
        checkOtherClouds(ctx.clouds, placements, given, { everyOneNeeded: false });
        const remote = await mintCloudTokens(ctx, { project, name }, given);
        const updated = await updateService(
          ctx.sql,
          { project, name },
          ctx.caller.user,
          change,
          remote,
        ).catch(async (err: unknown) => {
          await revokeTokens(ctx, `${project}/${name}`, remote);
          throw err;
        });
        // The tokens the new ones replace, queued with the change: revoked each with itself.
        await revokeQueued(ctx, updated.revoke);
        await keepServiceToken(ctx, updated.id);
        // At its period; a paused one is not run (it changes nothing until resumed).
        await ensureSchedule(ctx.temporal, updated);
        return detail(ctx, project, name);
      }),

    pause: procedure
      .meta(at(WRITE, 'POST /projects/{project}/services/{name}/pause'))
      .input(byService)
      .output(serviceDetailOut)
      .mutation(async ({ ctx, input }) => {
        const paused = await updateService(ctx.sql, input, ctx.caller.user, { paused: true });
        await ensureSchedule(ctx.temporal, paused);
        await ctx.temporal.schedule.getHandle(scheduleId(input.project, input.name)).pause();
        return detail(ctx, input.project, input.name);
      }),

    resume: procedure
      .meta(at(WRITE, 'POST /projects/{project}/services/{name}/resume'))
      .input(byService)
      .output(serviceDetailOut)
      .mutation(async ({ ctx, input }) => {
        const resumed = await updateService(ctx.sql, input, ctx.caller.user, { paused: false });
        await keepServiceToken(ctx, resumed.id);
        await ctx.temporal.schedule
          .getHandle(scheduleId(input.project, input.name))
          .unpause()
          .catch(() => {});
        await ensureSchedule(ctx.temporal, resumed);
        return detail(ctx, input.project, input.name);
      }),

    /** Its reconciles delete every instance, then the service and its schedule go. */
    delete: procedure
      .meta(at(WRITE, 'DELETE /projects/{project}/services/{name}'))
      .input(byService)
      .output(serviceDeleteOut)
      .mutation(async ({ ctx, input }) => {
        const service = await getService(ctx.sql, input.project, input.name);
        await markDeleting(ctx.sql, service.id, ctx.caller.user);
        await keepServiceToken(ctx, service.id);
        await ctx.temporal.schedule
          .getHandle(scheduleId(input.project, input.name))
          .unpause()
          .catch(() => {});
        // Made again if it went missing: a delete must be carried out.
        await ensureSchedule(ctx.temporal, { ...service, paused: false });
        return { project: input.project, name: input.name, deleting: true };
      }),

    events: procedure
      .meta(at(READ, 'GET /projects/{project}/services/{name}/events'))
      .input(serviceEventsInput)
      .output(serviceEventsOut)
      .query(async ({ ctx, input }) => {
        const service = await getService(ctx.sql, input.project, input.name);
        return serviceEvents(ctx.sql, service.id, input.limit);
      }),
  }),
});

export type ServicesRouter = typeof servicesRouter;
export const createServicesCaller = createServicesCallerFactory(servicesRouter);
