import type { AddressInfo } from 'node:net';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { createContextInner, type ApiDeps } from './context.ts';
import { appRouter } from './router.ts';

export interface ApiServerOptions {
  host: string;
  port: number;
}

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/** Serves the tRPC API over HTTP under /trpc. */
export async function startApiServer(deps: ApiDeps, options: ApiServerOptions): Promise<ApiServer> {
  const server = createHTTPServer({
    router: appRouter,
    basePath: '/trpc/',
    createContext: () => createContextInner(deps),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        console.error(`api ${path ?? '?'}:`, error.cause ?? error);
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host}:${port}/trpc`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
