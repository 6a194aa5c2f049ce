import { createTRPCClient, httpLink } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import type { CloudRouter } from '../cloud/api/router.ts';
import type { Config } from '../config.ts';
import { tokenFrom } from './files.ts';
import { UsageError } from './usage.ts';

// Where the API process mounts the cloud (cloud/api/server.ts's CLOUD_TRPC_PATH), written out
// so the command does not load the server's modules.
const CLOUD_TRPC_PATH = '/cloud/trpc';

export type CloudOut = inferRouterOutputs<CloudRouter>;
export type CloudApi = ReturnType<typeof cloudClient>;

/**
 * $VAGOTH_CLOUD_URL, else the cloud served beside the cluster API the config names. Read here,
 * not in config.ts, while the cloud layer's own settings are still being shaped there.
 */
export function cloudUrl(env: NodeJS.ProcessEnv, apiUrl: string): string {
  const given = env.VAGOTH_CLOUD_URL;
  if (given === undefined || given === '') return new URL(CLOUD_TRPC_PATH, apiUrl).href;
  if (!URL.canParse(given) || !/^https?:$/.test(new URL(given).protocol)) {
    throw new UsageError(`VAGOTH_CLOUD_URL must be an http(s) URL, not ${JSON.stringify(given)}`);
  }
  return given;
}

/** $VAGOTH_TOKEN, else the cloud admin token the first API process wrote; none: refused. */
export function cloudToken(config: Pick<Config, 'token' | 'cloud'>): string | undefined {
  return tokenFrom(config.token, config.cloud.adminTokenFile);
}

/** What to tell a caller the cloud refused as unauthorised. */
export function cloudTokenHint(config: Pick<Config, 'cloud'>, bearer: string | undefined) {
  if (bearer === undefined) {
    return `set VAGOTH_TOKEN, or run where ${config.cloud.adminTokenFile} is readable`;
  }
  if (bearer.startsWith('vgt_')) {
    return 'VAGOTH_TOKEN holds a cluster token (vgt_...); the cloud takes a cloud token (vgc_...)';
  }
  return null;
}

/** The cloud's API over HTTP (one call a request, plain JSON), with the bearer token. */
export function cloudClient(url: string, bearer: string | undefined) {
  const headers = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
  return createTRPCClient<CloudRouter>({ links: [httpLink({ url, headers })] });
}
