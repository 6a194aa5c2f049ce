import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Mount } from '../../api/server.ts';
import { createCloudContext, type CloudDeps } from './context.ts';
import { cloudRouter } from './router.ts';

export const CLOUD_TRPC_PATH = '/cloud/trpc';

/** The cloud's tRPC API, to mount beside the cluster's on the same server. */
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
  return {
    prefix: '/cloud/',
    handler: (req: IncomingMessage, res: ServerResponse) => handler(req, res),
  };
}
