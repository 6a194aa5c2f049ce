import { createHash } from 'node:crypto';
import { initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { LAYER_ERRORS, restRoutes } from '../../api/rest.ts';
import { answerFor, bearerToken, errorFormatter, refuseDeepInput } from '../../api/trpc.ts';
import { authorizeCloud, type Caller, type Rule, type Target } from '../authorize.ts';
import { findCaller } from '../store/tokens.ts';
import { findProject } from '../store/projects.ts';
import { findUser } from '../store/users.ts';
import type { CloudContext } from './context.ts';
import { projectName, userName } from './schemas.ts';
import { toCloudError } from './errors.ts';

/**
 * Every cloud procedure says what it needs (cloud/authorize.ts); one without a rule is refused.
 * `openapi` says where it is served over REST (cloud/api/rest.ts), under /cloud/api.
 */
export type CloudMeta = OpenApiMeta<{ rule: Rule }>;

const t = initTRPC.context<CloudContext>().meta<CloudMeta>().create({ errorFormatter });

const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) throw answerFor(result.error, toCloudError);
  return result;
});

const boundDepth = t.middleware(async ({ getRawInput, next }) => {
  await refuseDeepInput(getRawInput);
  return next();
});

/** A string field of the raw input, before validation (which comes after the token's check). */
function rawField(input: unknown, field: string): unknown {
  return input !== null && typeof input === 'object'
    ? (input as Record<string, unknown>)[field]
    : undefined;
}

/** What the input names that the rule is about: its project, or the user acted on. */
async function targetOf(ctx: CloudContext, rule: Rule, input: unknown): Promise<Target> {
  if (rule.kind === 'project') {
    const parsed = projectName.safeParse(rawField(input, 'project'));
    if (!parsed.success) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `project: ${parsed.error.issues[0]?.message ?? 'is required'}`,
      });
    }
    const name = parsed.data;
    const project = await ctx.caches.projects.get(name, () => findProject(ctx.sql, name));
    return { project: project ? { id: project.id, name } : { id: null, name } };
  }
  if (rule.kind === 'user') {
    // No user by that shape: the input's validation refuses it, after this check.
    const parsed = userName.safeParse(rawField(input, 'user'));
    if (!parsed.success) return {};
    const name = parsed.data;
    // A user that does not exist is still another user: only an admin learns it is missing.
    const user = await findUser(ctx.sql, name);
    return { userId: user?.id ?? `missing:${name}` };
  }
  return {};
}

/** Who the token stands for: none when unknown, revoked, expired or its user disabled. */
async function callerOf(ctx: CloudContext, secret: string | undefined): Promise<Caller | null> {
  if (secret === undefined) return null;
  const key = createHash('sha256').update(secret).digest('base64');
  const caller = await ctx.caches.callers.get(key, () => findCaller(ctx.sql, secret));
  // One remembered past its expiry is not honoured.
  return caller?.expiresAt && caller.expiresAt.getTime() <= Date.now() ? null : caller;
}

/**
 * A change may revoke a token, disable a user, change a membership or delete a project: what
 * the cloud remembered of them is looked up anew.
 */
const forgetCallersOnChange = t.middleware(async ({ ctx, type, next }) => {
  const result = await next();
  // Only a change that was made: a refused call (or a stream of them) forgets nothing.
  if (type === 'mutation' && result.ok) {
    for (const cache of Object.values(ctx.caches)) cache.clear();
  }
  return result;
});

/**
 * Every call carries a cloud token (`vgc_...`) whose user may make it: checked, with the
 * project or user it names, before its input is validated.
 */
const authorize = t.middleware(async ({ ctx, meta, path, getRawInput, next }) => {
  const caller = await callerOf(ctx, bearerToken(ctx.authorization));
  if (!caller) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'needs an Authorization: Bearer header with a valid cloud token',
    });
  }
  if (!meta?.rule) throw new TRPCError({ code: 'FORBIDDEN', message: `${path} has no rule` });
  const target = await targetOf(ctx, meta.rule, await getRawInput());
  const decision = authorizeCloud(caller, path, meta.rule, target);
  if (!decision.allowed) throw new TRPCError({ code: decision.code, message: decision.reason });
  return next({ ctx: { ...ctx, caller, target } });
});

export const router = t.router;
/** The only procedure builder: no cloud procedure can be served without a token and a rule. */
export const procedure = t.procedure
  .use(mapErrors)
  .use(authorize)
  .use(forgetCallersOnChange)
  .use(boundDepth);
export const createCloudCallerFactory = t.createCallerFactory;

/** Rules, by what procedures do. */
export const ADMIN_READ = { rule: { kind: 'admin', write: false } } satisfies CloudMeta;
export const ADMIN_WRITE = { rule: { kind: 'admin', write: true } } satisfies CloudMeta;
export const USER_READ = { rule: { kind: 'user', write: false } } satisfies CloudMeta;
export const USER_WRITE = { rule: { kind: 'user', write: true } } satisfies CloudMeta;
export const PROJECT_READ = { rule: { kind: 'project', needs: 'reader' } } satisfies CloudMeta;
export const PROJECT_WRITE = { rule: { kind: 'project', needs: 'member' } } satisfies CloudMeta;

/**
 * A procedure's rule and its REST route (`METHOD /path`, `{field}` a path parameter), listed
 * under `tag` in the OpenAPI document: `routes('instances')(PROJECT_READ, 'GET /projects/...')`.
 */
export const routes = restRoutes<CloudMeta>(LAYER_ERRORS);
