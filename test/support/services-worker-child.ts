import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const SERVICES_WORKER = fileURLToPath(new URL('../../workers/services-worker.ts', import.meta.url));

/**
 * `npm run services-worker` as a child process, so a test can SIGKILL it mid-reconcile as a
 * machine failure would (no drain, no cleanup) and start another in its place. `env` is its
 * whole configuration (DATABASE_URL, TEMPORAL_ADDRESS, ...), with PATH and HOME added.
 */
export function servicesWorkerChild(env: Record<string, string>) {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const ready = 'vagoth-services-worker-ready';
  return {
    /** Resolves once the worker polls its task queue. */
    async start() {
      if (child) throw new Error('services worker already running');
      output = '';
      const started = spawn(process.execPath, ['--import', 'tsx', SERVICES_WORKER], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      let exitedWith = '';
      exited = new Promise((resolve) =>
        started.once('exit', (code, signal) => {
          exitedWith = String(code ?? signal);
          if (child === started) child = null;
          resolve();
        }),
      );
      // Enough of the tail to explain a failure, never the whole log.
      const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
      started.stderr!.on('data', keep);
      const up = new Promise<void>((resolve) =>
        started.stdout!.on('data', (chunk: Buffer) => {
          keep(chunk);
          if (output.includes(ready)) resolve();
        }),
      );
      await Promise.race([up, exited]);
      if (exitedWith) throw new Error(`services worker exited (${exitedWith}):\n${output}`);
    },
    /** Kills it with no chance to finish anything, and waits until it is gone. */
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const was = child;
      if (!was) return;
      was.kill(signal);
      await exited;
      child = null;
    },
    get output() {
      return output;
    },
  };
}

/** A call held by a CloudProxy: sent on to the cloud when the test says, its answer dropped. */
export interface HeldCall {
  procedure: string;
  /** Sends it to the cloud as it came (a request whose answer is lost); the cloud's status. */
  forward(): Promise<number>;
}

/**
 * An HTTP proxy in front of the cloud's API, for a worker in another process: every call goes
 * through, except one the test asks it to hold (the nth call of a procedure from now), which
 * waits, unanswered, until the test kills its caller or forwards it.
 */
export async function cloudProxy(cloudUrl: string) {
  const target = new URL(cloudUrl);
  const calls = new Map<string, number>();
  let hold: {
    procedure: string;
    after: number;
    seen: number;
    caught: (call: HeldCall) => void;
  } | null = null;

  const send = async (req: IncomingMessage, body: Buffer) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) {
        headers[k] = v;
      }
    }
    return fetch(new URL(req.url!, target.origin), {
      method: req.method,
      headers,
      ...(body.length > 0 ? { body } : {}),
      redirect: 'manual',
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const procedure = new URL(req.url!, target.origin).pathname.split('/').at(-1)!;
    calls.set(procedure, (calls.get(procedure) ?? 0) + 1);
    if (hold && hold.procedure === procedure && hold.seen++ === hold.after) {
      const caught = hold.caught;
      hold = null;
      caught({ procedure, forward: async () => (await send(req, body)).status });
      return;
    }
    const answer = await send(req, body);
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await answer.arrayBuffer()));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    /** The cloud's tRPC URL, through this proxy. */
    url: `http://127.0.0.1:${port}${target.pathname}`,
    /** How many calls of `procedure` went through so far. */
    calls: (procedure: string) => calls.get(procedure) ?? 0,
    /** Lets `after` calls of `procedure` through, then holds the next; resolves once it comes. */
    hold(procedure: string, after: number): Promise<HeldCall> {
      return new Promise((caught) => {
        hold = { procedure, after, seen: 0, caught };
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
