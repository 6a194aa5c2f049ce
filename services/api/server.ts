import { layerMount } from '../../api/mount.ts';
import type { Mount } from '../../api/server.ts';
import type { ServicesDeps } from './context.ts';
import { SERVICES_API } from './rest.ts';
import { createServicesCaller } from './router.ts';

export const SERVICES_TRPC_PATH = SERVICES_API.paths.trpc;

/**
 * The service layer's APIs, to mount beside the cluster's and the cloud's: tRPC under
 * /services/trpc, REST under /services/api, described by /services/openapi.json.
 */
export function servicesMount(
  deps: ServicesDeps,
  limits: { maxBodyBytes: number; maxBatchSize: number },
): Mount {
  return layerMount(SERVICES_API, {
    createContext: (authorization) => ({ ...deps, authorization }),
    createCaller: createServicesCaller,
    limits,
  });
}
