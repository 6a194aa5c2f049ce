import { createTRPCClient, httpLink } from '@trpc/client';
import type { CloudRouter } from '../../cloud/api/router.ts';

/** The cloud's API as a client calls it: over HTTP, plain JSON, with a bearer token. */
export function cloudClient(url: string, token: string | undefined) {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  return createTRPCClient<CloudRouter>({ links: [httpLink({ url, headers })] });
}

export type CloudClient = ReturnType<typeof cloudClient>;
