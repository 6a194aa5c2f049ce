import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyRouter, inferRouterContext } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { OpenAPIObject } from 'trpc-to-openapi';
import { openApiDocument, restHandler, type RestDocument } from './rest.ts';
import type { Mount } from './server.ts';

/** Where a layer's APIs are served under its prefix (`/cloud`): tRPC, REST and its document. */
export function layerPaths(prefix: `/${string}`) {
  return {
    trpc: `${prefix}/trpc`,
    rest: `${prefix}/api`,
    document: `${prefix}/openapi.json`,
  } as const;
}

/** A layer's API: its router, where it is served, and what its OpenAPI document says of it. */
export function layerApi<R extends AnyRouter>(name: string, router: R, document: RestDocument) {
  const paths = layerPaths(`/${name}`);
  return {
    name,
    router,
    paths,
    document,
    /** Its OpenAPI 3.1 document; its server is /<name>/api on the same origin. */
    openApi: (): OpenAPIObject => openApiDocument(router, paths.rest, document),
  };
}

export type LayerApi<R extends AnyRouter> = ReturnType<typeof layerApi<R>>;

export interface LayerMountOptions<R extends AnyRouter> {
  /** A call's context, from its Authorization header. */
  createContext(authorization: string | undefined): inferRouterContext<R>;
  /** The router's caller in a context, for the REST routes. */
  createCaller(ctx: inferRouterContext<R>): object;
  limits: { maxBodyBytes: number; maxBatchSize: number };
}

/**
 * A layer's APIs, to mount beside the cluster's on the same server: tRPC under
 * /<name>/trpc, REST under /<name>/api, described by /<name>/openapi.json.
 */
export function layerMount<R extends AnyRouter>(
  { name, router, paths, document }: LayerApi<R>,
  { createContext, createCaller, limits }: LayerMountOptions<R>,
): Mount {
  const trpc = createHTTPHandler({
    router,
    basePath: `${paths.trpc}/`,
    maxBodySize: limits.maxBodyBytes,
    maxBatchSize: limits.maxBatchSize,
    createContext: ({ req }) => createContext(req.headers.authorization),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        console.error(`${name} ${path ?? '?'}:`, error.cause ?? error);
    },
  });
  const rest = restHandler(
    {
      router,
      basePath: paths.rest,
      documentPath: paths.document,
      document,
      callerFor: (authorization) => createCaller(createContext(authorization)),
      name,
    },
    limits,
  );
  return {
    prefix: `/${name}/`,
    handler: (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!;
      if (path === paths.document || path.startsWith(`${paths.rest}/`)) {
        void rest(req, res);
      } else {
        trpc(req, res);
      }
    },
  };
}
