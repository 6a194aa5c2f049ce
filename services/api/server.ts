import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Mount } from '../../api/server.ts';
import type { ServicesDeps } from './context.ts';
import { servicesRouter } from './router.ts';

export const SERVICES_TRPC_PATH = '/services/trpc';

/** The service layer's tRPC API, to mount beside the cluster's and the cloud's. */
export function servicesMount(
  deps: ServicesDeps,
  limits: { maxBodyBytes: number; maxBatchSize: number },
): Mount {
  const handler = createHTTPHandler({
    router: servicesRouter,
    basePath: `${SERVICES_TRPC_PATH}/`,
    maxBodySize: limits.maxBodyBytes,
    maxBatchSize: limits.maxBatchSize,
    createContext: ({ req }) => ({ ...deps, authorization: req.headers.authorization }),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        console.error(`services ${path ?? '?'}:`, error.cause ?? error);
    },
  });
  return {
    prefix: '/services/',
    handler: (req: IncomingMessage, res: ServerResponse) => handler(req, res),
  };
}
