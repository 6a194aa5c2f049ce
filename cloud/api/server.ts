import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Mount } from '../../api/server.ts';
import { createCloudContext, type CloudDeps } from './context.ts';
import { CLOUD_REST_PATH, OPENAPI_PATH, restHandler } from './rest.ts';
import { cloudRouter } from './router.ts';

export const CLOUD_TRPC_PATH = '/cloud/trpc';

/**
 * The cloud's APIs, to mount beside the cluster's on the same server: tRPC under /cloud/trpc,
 * REST under /cloud/api, described by /cloud/openapi.json.
 */
export function cloudMount(
  deps: CloudDeps,
  limits: { maxBodyBytes: number; maxBatchSize: number },
): Mount {
  const handler = createHTTPHandler({
    router: cloudRouter,
    basePath: `${CLOUD_TRPC_PATH}/`,
    maxBodySize: limits.maxBodyBytes,
    maxBatchSize: limits.maxBatchSize,
    createContext: ({ req }) => createCloudContext(deps, req.headers.authorization),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        console.error(`cloud ${path ?? '?'}:`, error.cause ?? error);
    },
  });
  const rest = restHandler(deps, limits);
  return {
    prefix: '/cloud/',
    handler: (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!;
      if (path === OPENAPI_PATH || path.startsWith(`${CLOUD_REST_PATH}/`)) {
        void rest(req, res);
      } else {
        handler(req, res);
      }
    },
  };
}
