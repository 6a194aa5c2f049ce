import { createHash } from 'node:crypto';
import { initTRPC, TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { z } from 'zod';
import { LAYER_ERRORS, restRoutes } from '../../api/rest.ts';
import { bearerToken, errorFormatter, refuseDeepInput } from '../../api/trpc.ts';
import { CloudCredentialsError, CloudRefusedError, CloudUnreachableError } from '../errors.ts';
import { ServiceConflictError, ServiceInputError, ServiceNotFoundError } from '../store.ts';
import type { ServicesContext } from './context.ts';

/**
 * What a procedure needs of the caller in the service's project; one without it is member-only.
 * `openapi` says where it is served over REST (api/rest.ts), under /services/api.
 */
export type ServicesMeta = OpenApiMeta<{ needs: 'reader' | 'member' }>;

const t = initTRPC.context<ServicesContext>().meta<ServicesMeta>().create({ errorFormatter });

/** The service layer's failures as API codes; anything else is the server's own fault. */
function answer(err: unknown): TRPCError {
  if (err instanceof TRPCError) return err;
  if (err instanceof ServiceNotFoundError)
    return new TRPCError({ code: 'NOT_FOUND', message: err.message });
  if (err instanceof ServiceConflictError)
    return new TRPCError({ code: 'CONFLICT', message: err.message });
  if (err instanceof ServiceInputError)
    return new TRPCError({ code: 'BAD_REQUEST', message: err.message });
  if (err instanceof CloudCredentialsError) {
    return new TRPCError({ code: err.code, message: err.message });
  }
  if (err instanceof CloudUnreachableError) {
    return new TRPCError({ code: 'BAD_GATEWAY', message: 'the cloud did not answer' });
  }
  if (err instanceof CloudRefusedError) {
    return new TRPCError({ code: err.code as TRPC_ERROR_CODE_KEY, message: err.message });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error', cause: err });
}

const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok)
    throw answer(
      result.error.code === 'INTERNAL_SERVER_ERROR'
        ? (result.error.cause ?? result.error)
        : result.error,
    );
  return result;
});

const projectField = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be a project name');

/**
 * Every call carries a cloud token: the cloud says who it stands for and its role in each
 * project, and the call's project must be one where that role does what the procedure needs.
 * A project the caller does not see answers NOT_FOUND, as one that does not exist.
 */
const authorize = t.middleware(async ({ ctx, meta, type, getRawInput, next }) => {
  const token = bearerToken(ctx.authorization);
  if (token === undefined) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'needs an Authorization: Bearer header with a cloud token',
    });
  }
  const cloud = ctx.cloudFor(token);
  const key = createHash('sha256').update(token).digest('base64');
  const lookUp = () =>
    cloud.caller().catch((err: unknown) => {
      if (err instanceof CloudRefusedError && err.code === 'UNAUTHORIZED') return null;
      throw err;
    });
  // A change is checked against the cloud as it is now (a revoked token, a removed member);
  // reads may use what was remembered a few seconds ago.
  const caller = type === 'mutation' ? await lookUp() : await ctx.callers.get(key, lookUp);
  if (!caller)
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'the cloud does not know this token' });
  const raw = (await getRawInput()) as { project?: unknown } | undefined;
  const project = projectField.safeParse(raw?.project);
  if (!project.success) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `project: ${project.error.issues[0]?.message}`,
    });
  }
  // Own keys only: a project named like a built-in of objects is no role.
  const role = Object.hasOwn(caller.roles, project.data) ? caller.roles[project.data] : undefined;
  if (role !== 'admin' && role !== 'member' && role !== 'reader') {
    throw new TRPCError({
      code: 'NOT_FOUND',
      message: `project ${JSON.stringify(project.data)} not found`,
    });
  }
  if (meta?.needs !== 'reader' && role === 'reader') {
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `needs the member role in project ${project.data}`,
    });
  }
  return next({ ctx: { ...ctx, caller, cloud } });
});

/** A change may give a service a new token or remove one: what was remembered goes. */
const forgetOnChange = t.middleware(async ({ ctx, type, next }) => {
  const result = await next();
  if (type === 'mutation' && result.ok) ctx.callers.clear();
  return result;
});

/** The input's depth is bounded before any schema walks it. */
const boundedInput = t.middleware(async ({ getRawInput, next }) => {
  await refuseDeepInput(getRawInput);
  return next();
});

export const router = t.router;
export const procedure = t.procedure
  .use(mapErrors)
  .use(authorize)
  .use(forgetOnChange)
  .use(boundedInput);
export const createServicesCallerFactory = t.createCallerFactory;
export const READ = { needs: 'reader' } satisfies ServicesMeta;
export const WRITE = { needs: 'member' } satisfies ServicesMeta;

/**
 * A procedure's rule and its REST route (`METHOD /path`, `{field}` a path parameter), listed
 * under `tag` in the OpenAPI document: `routes('services')(READ, 'GET /projects/...')`.
 */
export const routes = restRoutes<ServicesMeta>(LAYER_ERRORS);
