import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createContextInner, type ApiDeps } from './context.ts';
import { appRouter } from './router.ts';

export interface ApiServerOptions {
  host: string;
  port: number;
  /** The largest request body, in bytes: a larger one is refused (413) before it is read. */
  maxBodyBytes: number;
  /** The most calls one batched request may carry. */
  maxBatchSize: number;
}

export interface ApiServer {
  url: string;
  /** `http://host:port`, under which `mounts` are served too. */
  origin: string;
  close(): Promise<void>;
}

/** Another API served by the same server under its own path (the cloud's, /cloud/). */
export interface Mount {
  prefix: string;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A 413 in tRPC's shape, sent without reading the body; the connection is closed after it. */
function refuseTooLarge(res: ServerResponse, maxBodyBytes: number): void {
  const body = JSON.stringify({
    error: {
      message: `request body larger than ${maxBodyBytes} bytes`,
      code: -32013,
      data: { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413 },
    },
  });
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
  res.end(body);
}

/** Serves the tRPC API over HTTP under /trpc, and each mount under its prefix. */
export async function startApiServer(
  deps: ApiDeps,
  options: ApiServerOptions,
  mounts: readonly Mount[] = [],
): Promise<ApiServer> {
  const handler = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    // A body that declares no length (chunked) is cut off by tRPC once it passes the limit.
    maxBodySize: options.maxBodyBytes,
    maxBatchSize: options.maxBatchSize,
    createContext: ({ req }) =>
      createContextInner(deps, { authorization: req.headers.authorization }),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        console.error(`api ${path ?? '?'}:`, error.cause ?? error);
    },
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > options.maxBodyBytes) {
      refuseTooLarge(res, options.maxBodyBytes);
      req.destroy();
      return;
    }
    const mount = mounts.find((m) => req.url?.startsWith(m.prefix));
    (mount?.handler ?? handler)(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host}:${port}/trpc`,
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
