import { createTRPCClient, httpLink } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { ServicesRouter } from '../services/api/router.ts';
import { cloudUrl } from './cloud-client.ts';

// Where the API process mounts the service layer (services/api/server.ts's SERVICES_TRPC_PATH),
// written out so the command does not load the server's modules.
const SERVICES_TRPC_PATH = '/services/trpc';

export type ServicesIn = inferRouterInputs<ServicesRouter>;
export type ServicesOut = inferRouterOutputs<ServicesRouter>;
export type ServicesApi = ReturnType<typeof servicesClient>;

/** The service layer is served by the cloud's server: $VAGOTH_CLOUD_URL, or beside the API. */
export const servicesUrl = (env: NodeJS.ProcessEnv, apiUrl: string) =>
  new URL(SERVICES_TRPC_PATH, cloudUrl(env, apiUrl)).href;

/** The service layer's API over HTTP (one call a request, plain JSON), with a cloud token. */
export function servicesClient(url: string, bearer: string | undefined) {
  const headers = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
  return createTRPCClient<ServicesRouter>({ links: [httpLink({ url, headers })] });
}
