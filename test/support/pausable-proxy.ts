import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of `target`, that a test can pause: paused, every open
 * connection is cut and each new one is closed at once (as a server that went away); resumed,
 * it forwards again. What is behind it keeps running all the while.
 */
export interface PausableProxy {
  /** `http://127.0.0.1:<port>`: where clients reach the target through the proxy. */
  origin: string;
  port: number;
  paused(): boolean;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function pausableProxy(target: {
  host: string;
  port: number;
}): Promise<PausableProxy> {
  let paused = false;
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  };
  const server = createServer((client) => {
    if (paused) {
      client.destroy();
      return;
    }
    track(client);
    const upstream = connect(target.port, target.host);
    track(upstream);
    // Either side's end or failure ends both.
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  const cutAll = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    paused: () => paused,
    pause() {
      paused = true;
      cutAll();
    },
    resume() {
      paused = false;
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
