import { createTRPCClient, httpLink } from '@trpc/client';
import type { CloudRouter } from '../../cloud/api/router.ts';
import { cloudDriver, type CloudCalls, type CloudDriver } from './driver.ts';

/**
 * Another vagoth cloud, over HTTP with a cloud token of the service's project: no redirect
 * followed (the token goes only where it was told), no call longer than `timeoutMs`.
 */
export function vagothCloud(options: {
  url: string;
  token: string;
  timeoutMs: number;
}): CloudDriver {
  const api = createTRPCClient<CloudRouter>({
    links: [
      httpLink({
        url: options.url,
        headers: { authorization: `Bearer ${options.token}` },
        fetch: (input, init) =>
          fetch(input, {
            ...init,
            redirect: 'error',
            signal: AbortSignal.timeout(options.timeoutMs),
          }),
      }),
    ],
  });
  return cloudDriver('vagoth', {
    me: () => api.users.me.query(),
    projects: () => api.projects.list.query(),
    createToken: (input) => api.tokens.create.mutate(input),
    revokeToken: (input) => api.tokens.revoke.mutate(input),
    list: (input) => api.instances.list.query(input),
    create: (input) => api.instances.create.mutate(input),
    delete: (input) => api.instances.delete.mutate(input),
  });
}

/** An answer as it would arrive over HTTP (times as ISO text): both drivers answer alike. */
const asSent = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * This deployment's cloud, called in-process through its router (cloud/api/router.ts
 * createCloudCaller, with a context holding the service's token).
 */
export function localCloud(caller: {
  users: { me(): Promise<unknown> };
  projects: { list(): Promise<unknown> };
  tokens: {
    create(input: Parameters<CloudCalls['createToken']>[0]): Promise<unknown>;
    revoke(input: Parameters<CloudCalls['revokeToken']>[0]): Promise<unknown>;
  };
  instances: {
    list(input: Parameters<CloudCalls['list']>[0]): Promise<unknown>;
    create(input: Parameters<CloudCalls['create']>[0]): Promise<unknown>;
    delete(input: Parameters<CloudCalls['delete']>[0]): Promise<unknown>;
  };
}): CloudDriver {
  return cloudDriver('local', {
    me: async () => asSent(await caller.users.me()) as never,
    projects: async () => asSent(await caller.projects.list()) as never,
    createToken: async (input) => asSent(await caller.tokens.create(input)) as never,
    revokeToken: (input) => caller.tokens.revoke(input),
    list: async (input) => asSent(await caller.instances.list(input)) as never,
    create: async (input) => asSent(await caller.instances.create(input)) as never,
    delete: (input) => caller.instances.delete(input),
  });
}

/**
 * The other vagoth clouds an operator allows a service's placements to name
 * (config.services.clouds): a caller names one, and only its allow-listed URL is opened.
 */
export interface OtherClouds {
  /** Whether `name` is one of them (own names only: `constructor` is no built-in here). */
  has(name: string): boolean;
  /** The URL cloud `name` is reached at now; undefined for a name not allowed. */
  urlOf(name: string): string | undefined;
  /**
   * Cloud `name` reached with `token`; undefined for a name not allowed, or, with `mintedAt`,
   * one the operator has pointed elsewhere since the token was minted there: a token goes only
   * to the cloud that made it.
   */
  driver(name: string, token: string, mintedAt?: string | null): CloudDriver | undefined;
}

export function otherClouds(
  urls: Readonly<Record<string, string>>,
  timeoutMs: number,
): OtherClouds {
  const known = new Map(Object.entries(urls));
  return {
    has: (name) => known.has(name),
    urlOf: (name) => known.get(name),
    driver(name, token, mintedAt) {
      const url = known.get(name);
      if (url === undefined || (mintedAt != null && mintedAt !== url)) return undefined;
      return vagothCloud({ url, token, timeoutMs });
    },
  };
}
