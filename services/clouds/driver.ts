import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { CloudRouter } from '../../cloud/api/router.ts';
import {
  CloudRefusedError,
  CloudUnreachableError,
  QuotaRefusedError,
  UnplaceableError,
} from '../errors.ts';

type In = inferRouterInputs<CloudRouter>;
type Out = inferRouterOutputs<CloudRouter>;

/** An instance as a cloud's API answers it: the service layer reads nothing else of it. */
export type CloudInstance = Out['instances']['get'];
export type CloudInstanceInput = In['instances']['create'];

/** The calls of a cloud's API the service layer makes, however it reaches them. */
export interface CloudCalls {
  me(): Promise<Out['users']['me']>;
  projects(): Promise<Out['projects']['list']>;
  createToken(input: In['tokens']['create']): Promise<Out['tokens']['create']>;
  revokeToken(input: In['tokens']['revoke']): Promise<unknown>;
  list(input: In['instances']['list']): Promise<CloudInstance[]>;
  create(input: CloudInstanceInput): Promise<Out['instances']['create']>;
  delete(input: In['instances']['delete']): Promise<unknown>;
}

/**
 * How the service layer reaches a cloud, the layer below it: through its API with a token of
 * the service's project, never its tables, so a service can span clouds in other deployments
 * (`vagoth`, over HTTP) as well as this one's (`local`).
 */
/** Who a token stands for in a cloud, and its role in each project it sees. */
export interface CloudCaller {
  user: string;
  /** `admin`, `member` or `reader`, by project, as this token may act there. */
  roles: Record<string, string>;
}

export interface CloudDriver {
  readonly kind: 'local' | 'vagoth';
  /** Who the driver's token stands for. */
  caller(): Promise<CloudCaller>;
  /** A token of the same user, narrowed to `project`: what a service acts with. */
  mintToken(name: string, project: string): Promise<{ id: string; token: string }>;
  revokeToken(id: string): Promise<void>;
  /** Every instance of the project whose name starts with `prefix`. */
  instances(project: string, prefix: string): Promise<CloudInstance[]>;
  /** Starts an instance's create; refusals are QuotaRefusedError, UnplaceableError, ... */
  create(input: CloudInstanceInput): Promise<CloudInstance>;
  /** Deletes the instance; one already gone is no error. */
  delete(project: string, name: string): Promise<void>;
}

const PAGE = 100;

/** The code of a tRPC error, from the server side (TRPCError) or the client's. */
function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; data?: { code?: unknown } };
  if (typeof e?.data?.code === 'string') return e.data.code;
  return typeof e?.code === 'string' ? e.code : undefined;
}

/** A cloud's failure in the service layer's terms. */
export function serviceError(err: unknown): Error {
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === undefined || code === 'BAD_GATEWAY' || code === 'TIMEOUT') {
    return new CloudUnreachableError(message, { cause: err });
  }
  if (code === 'PRECONDITION_FAILED' && / quota: /.test(message)) {
    return new QuotaRefusedError(message);
  }
  if (code === 'PRECONDITION_FAILED' && /^no cluster can take it/.test(message)) {
    return new UnplaceableError(message);
  }
  return new CloudRefusedError(code, message);
}

/** The driver over a cloud's calls, the same whether they go in-process or over HTTP. */
export function cloudDriver(kind: 'local' | 'vagoth', calls: CloudCalls): CloudDriver {
  const wrap = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw serviceError(err);
    }
  };
  return {
    kind,
    async caller() {
      const [me, projects] = await Promise.all([wrap(calls.me), wrap(calls.projects)]);
      return { user: me.name, roles: Object.fromEntries(projects.map((p) => [p.name, p.role])) };
    },
    async mintToken(name, project) {
      const made = await wrap(() => calls.createToken({ name, project }));
      return { id: made.id, token: made.token };
    },
    async revokeToken(id) {
      await wrap(() => calls.revokeToken({ id }));
    },
    async instances(project, prefix) {
      const all: CloudInstance[] = [];
      for (let after: string | undefined; ;) {
        const page = await wrap(() =>
          calls.list({ project, prefix, limit: PAGE, ...(after ? { after } : {}) }),
        );
        all.push(...page);
        if (page.length < PAGE) return all;
        after = page.at(-1)!.name;
      }
    },
    async create(input) {
      return (await wrap(() => calls.create(input))).instance;
    },
    async delete(project, name) {
      try {
        await wrap(() => calls.delete({ project, name }));
      } catch (err) {
        // Only the instance not found is "gone already": a project or cluster not found is not.
        if (
          err instanceof CloudRefusedError &&
          err.code === 'NOT_FOUND' &&
          err.message === `instance ${JSON.stringify(name)} not found`
        ) {
          return;
        }
        throw err;
      }
    },
  };
}
