// bench/api's two vagoth stacks on one Temporal dev server: the local one in this process (its
// cluster API and the cloud on one HTTP server, as `npm run api` with VAGOTH_CLOUD=true serves
// them) and a remote one in a process of its own (`npm run api`), reached over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { startApiServer, type ApiServer } from '../api/server.ts';
import { CLOUD_TRPC_PATH } from '../cloud/api/server.ts';
import { loadConfig } from '../config.ts';
import type { Sql } from '../registry/db.ts';
import { createToken } from '../registry/tokens.ts';
import { freePort } from '../test/support/free-port.ts';
import { localTemporal } from '../test/support/local-temporal.ts';
import { apiDeps } from '../workers/api-deps.ts';
import { startCloud } from '../workers/cloud.ts';
import { connectClient } from '../workers/compose.ts';

const API_MAIN = fileURLToPath(new URL('../workers/api.ts', import.meta.url));

/** A URL of the database `sql` is connected to, for another process. */
async function urlOf(sql: Sql): Promise<string> {
  const [row] = await sql<{ db: string }[]>`SELECT current_database() AS db`;
  const { user, pass, host, port } = sql.options;
  const credentials = pass ? `${user}:${encodeURIComponent(String(pass))}` : user;
  return `postgres://${credentials}@${host[0]}:${port[0]}/${row!.db}`;
}

/** A cluster API and a token of its own (a cluster token, vgt_...). */
export interface ClusterEndpoint {
  url: string;
  token: string;
}

/** `npm run api` on the registry `sql` is connected to; resolves once it serves. */
export async function startRemote(
  sql: Sql,
  temporalAddress: string,
): Promise<ClusterEndpoint & { stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-remote-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', API_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: await urlOf(sql),
      TEMPORAL_ADDRESS: temporalAddress,
      VAGOTH_API_PORT: String(await freePort()),
      VAGOTH_DATA_DIR: dataDir,
      VAGOTH_CLOUD: 'false',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /vagoth API on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`the remote API exited: ${out}`)));
  });
  const { token } = await createToken(sql, { name: 'cloud', role: 'admin' });
  return {
    url,
    token,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface LocalStack {
  /** The cluster API (its own token) and the cloud's, with its admin's token. */
  cluster: ClusterEndpoint;
  cloud: { url: string; adminToken: string };
  close(): Promise<void>;
}

/**
 * The local cluster's API and the cloud over it, on `sql` (the cloud's pool too), the cloud
 * allowed to reach vagoth clusters under `clusterUrls`.
 */
export async function startLocal(
  sql: Sql,
  temporal: Client,
  clusterUrls: string[],
): Promise<LocalStack> {
  const config = loadConfig();
  const deps = apiDeps(config, sql, temporal);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-cloud-'));
  const cloud = await startCloud(
    {
      api: config.api,
      cloud: {
        ...config.cloud,
        enabled: true,
        adminTokenFile: path.join(dataDir, 'cloud-admin-token'),
        clusterUrls,
        // Not during the measured calls: a round over 100,000 instances is load of its own.
        reconcileMs: 3_600_000,
      },
    },
    sql,
    deps,
  );
  const server: ApiServer = await startApiServer(
    deps,
    { ...config.api, host: '127.0.0.1', port: 0 },
    [cloud.mount],
  );
  const { token } = await createToken(sql, { name: 'bench', role: 'reader' });
  return {
    cluster: { url: server.url, token },
    cloud: { url: `${server.origin}${CLOUD_TRPC_PATH}`, adminToken: cloud.adminToken! },
    async close() {
      await cloud.close();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Temporal dev server of the bench's own (or TEMPORAL_ADDRESS) and a client on it. */
export async function startTemporal(): Promise<{
  address: string;
  client: Client;
  close(): Promise<void>;
}> {
  const env = await localTemporal({ format: 'pretty', level: 'error' });
  const client = await connectClient(env.address, loadConfig().temporal.namespace);
  return {
    address: env.address,
    client,
    async close() {
      await client.connection.close();
      await env.teardown();
    },
  };
}
