import { layerMount } from '../../api/mount.ts';
import type { Mount } from '../../api/server.ts';
import { createCloudContext, type CloudDeps } from './context.ts';
import { CLOUD_API } from './rest.ts';
import { createCloudCaller } from './router.ts';

export const CLOUD_TRPC_PATH = CLOUD_API.paths.trpc;

/**
 * The cloud's APIs, to mount beside the cluster's on the same server: tRPC under /cloud/trpc,
 * REST under /cloud/api, described by /cloud/openapi.json.
 */
export function cloudMount(
  deps: CloudDeps,
  limits: { maxBodyBytes: number; maxBatchSize: number },
): Mount {
  return layerMount(CLOUD_API, {
    createContext: (authorization) => createCloudContext(deps, authorization),
    createCaller: createCloudCaller,
    limits,
  });
}
