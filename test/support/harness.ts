import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { inject } from 'vitest';
import { bearer, createContextInner, type ApiDeps } from '../../api/context.ts';
import { createCaller } from '../../api/router.ts';
import { startApiServer } from '../../api/server.ts';
import type { CloudDeps } from '../../cloud/api/context.ts';
import { CLOUD_TRPC_PATH } from '../../cloud/api/server.ts';
import { startCloud } from '../../workers/cloud.ts';
import { createToken, type Role } from '../../registry/tokens.ts';
import {
  writeSimulatedHost,
  type SimulatedHostOptions,
} from '../../drivers/libvirt/simulated-host.ts';
import type { PlacementPolicy } from '../../allocator/place.ts';
import { loadConfig, type ImagesOptions } from '../../config.ts';
import {
  createDriverFactory,
  type DriverFactory,
  type HostUriPolicy,
} from '../../drivers/index.ts';
import { TEST_HOST_URIS } from './host-uris.ts';
import { connect, type Sql } from '../../registry/db.ts';
import { createNetwork } from '../../registry/networks.ts';
import { connectClient, startWorker, type VagothWorker } from '../../workers/compose.ts';
import { withDatabase } from './global-setup.ts';
import { tokenCaller, type ApiCaller } from './token-caller.ts';

export const UI_URL = 'http://ui.test';
/** The API's defaults (config.ts): 1 MiB bodies, 10 calls a batch. */
export const API_LIMITS = { maxBodyBytes: 1024 * 1024, maxBatchSize: 10 };

// One Temporal runtime per test process; its INFO and WARN lines (expected failures too) would drown the test report.
Runtime.install({ logger: new DefaultLogger('ERROR') });

/** A database of this test file's own, cloned from the migrated template. */
export async function createTestDatabase(): Promise<{
  sql: Sql;
  url: string;
  drop(): Promise<void>;
}> {
  const adminUrl = inject('databaseUrl');
  const name = `vagoth_test_${randomUUID().replaceAll('-', '')}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDatabase')}`);
  const url = withDatabase(adminUrl, name);
  const sql = connect(url);
  return {
    sql,
    url,
    async drop() {
      await sql.end();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

export interface Harness {
  sql: Sql;
  databaseUrl: string;
  temporal: Client;
  /** A Temporal namespace of this harness's own: entity workflow ids (`vm:<name>`) live on,
   * so another test file's VM of the same name must not be the same workflow. */
  namespace: string;
  taskQueue: string;
  worker: VagothWorker;
  /** The API in-process, as the holder of an admin token (`token`) calls it. */
  api: ApiCaller;
  token: string;
  /** The API's dependencies, for callers of other kinds. */
  deps: ApiDeps;
  /** A fresh token of `role`, and an in-process caller holding it. */
  callerWith(role: Role): Promise<{ token: string; api: ApiCaller }>;
  /** Writes a simulated hypervisor for libvirt's test driver and returns its URI. */
  /** Set with `http: true`: the API's URL, as a client would call it. */
  apiUrl: string;
  /** Set with `cloud`: the cloud's API URL and its built-in admin's token. */
  cloud: { url: string; adminToken: string; deps: CloudDeps } | null;
  simulatedHost(name: string, options?: Partial<SimulatedHostOptions>): Promise<string>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  driverFactory?: DriverFactory;
  /** Also serve the API over HTTP on a free port (`apiUrl`). */
  http?: boolean;
  /** The cluster's placement policy (VAGOTH_PLACEMENT_POLICY), for worker and API. */
  placementPolicy?: PlacementPolicy;
  /** What hosts.register accepts (the API's check); TEST_HOST_URIS by default. */
  hostUris?: HostUriPolicy;
  /** A Temporal server of the test's own (one with its Web UI); the run's shared one by default. */
  temporalAddress?: string;
  /** Where images come from and are kept (worker and API); none allowed by default. */
  images?: ImagesOptions;
  /**
   * The cloud layer over this cluster, served under /cloud/trpc (with `http`): `clusterUrls`
   * are the prefixes vagoth clusters' URLs may start with.
   */
  cloud?: { clusterUrls?: string[]; clusterTimeoutMs?: number; reconcileMs?: number };
}

/** Registers a fresh namespace and waits until the server answers for it (a fraction of a second). */
async function createNamespace(address: string): Promise<string> {
  const namespace = `test-${randomUUID()}`;
  const admin = await connectClient(address, 'default');
  try {
    await admin.connection.workflowService.registerNamespace({
      namespace,
      // protobufjs encodes a plain number for an int64 field; the type asks for a Long.
      workflowExecutionRetentionPeriod: { seconds: 86_400 as never },
    });
    const client = new TemporalClient({ connection: admin.connection, namespace });
    for (let i = 0; ; i++) {
      const outcome = await client.workflow
        .getHandle('namespace-probe')
        .describe()
        .catch((err: unknown) => err);
      if (outcome instanceof WorkflowNotFoundError) return namespace;
      if (i === 100)
        throw new Error(`namespace ${namespace} never became usable`, { cause: outcome });
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.connection.close();
  }
}

/** Real Postgres, real Temporal, a real worker on a task queue and namespace of its own. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const placementPolicy = options.placementPolicy ?? 'spread';
  const address = options.temporalAddress ?? inject('temporalAddress');
  const taskQueue = `test-${randomUUID()}`;
  const namespace = await createNamespace(address);
  const temporal = await connectClient(address, namespace);
  const images = options.images ?? {
    store: path.join(tmpdir(), `vagoth-images-${taskQueue}`),
    sources: { dirs: [], urls: [] },
    maxBytes: 1024 ** 3,
  };
  const worker = await startWorker({
    sql: db.sql,
    address,
    namespace,
    taskQueue,
    workflowBundle: { code: inject('workflowBundle') },
    placementPolicy,
    images,
    driverFactory:
      options.driverFactory ??
      createDriverFactory({
        ...loadConfig().drivers,
        hostUris: options.hostUris ?? TEST_HOST_URIS,
      }),
  });
  const hostsDir = await mkdtemp(path.join(tmpdir(), 'vagoth-hosts-'));
  const { deps, token, api } = await tokenCaller({
    sql: db.sql,
    temporal,
    taskQueue,
    namespace,
    temporalUiUrl: UI_URL,
    placementPolicy,
    hostUris: options.hostUris ?? TEST_HOST_URIS,
    ...(options.images ? { imageSources: options.images.sources } : {}),
  });
  const cloud = options.cloud
    ? await startCloud(
        {
          api: { ...API_LIMITS, tokenCacheMs: 5_000 },
          cloud: {
            enabled: true,
            adminTokenFile: path.join(hostsDir, 'cloud-admin-token'),
            clusterUrls: options.cloud.clusterUrls ?? [],
            clusterTimeoutMs: options.cloud.clusterTimeoutMs ?? 5_000,
            reconcileMs: options.cloud.reconcileMs ?? 60_000,
          },
        },
        db.sql,
        deps,
      )
    : null;
  const server =
    options.http || cloud
      ? await startApiServer(
          deps,
          { host: '127.0.0.1', port: 0, ...API_LIMITS },
          cloud ? [cloud.mount] : [],
        )
      : null;
  // Every test can put NICs on `default` (10.0.0.0/8) without creating it.
  await createNetwork(db.sql, { name: 'default', cidr: '10.0.0.0/8' });
  return {
    sql: db.sql,
    databaseUrl: db.url,
    temporal,
    namespace,
    taskQueue,
    worker,
    api,
    token,
    deps,
    async callerWith(role) {
      const made = await createToken(db.sql, { name: `test-${role}`, role });
      return { token: made.token, api: createCaller(createContextInner(deps, bearer(made.token))) };
    },
    apiUrl: server?.url ?? '',
    cloud:
      cloud && server
        ? {
            url: `${server.origin}${CLOUD_TRPC_PATH}`,
            adminToken: cloud.adminToken!,
            deps: cloud.deps,
          }
        : null,
    simulatedHost: (name, o = {}) =>
      writeSimulatedHost(hostsDir, name, {
        ...o,
        cpus: o.cpus ?? 8,
        memoryMiB: o.memoryMiB ?? 16384,
      }),
    async close() {
      await cloud?.close();
      await server?.close();
      await worker.shutdown();
      await temporal.connection.close();
      await db.drop();
      await rm(hostsDir, { recursive: true, force: true });
      if (!options.images) await rm(images.store, { recursive: true, force: true });
    },
  };
}

/**
 * Waits for an operation to end. A VM's operation is an Update in its entity workflow: its
 * result is awaited, except `create`, which the workflow runs itself and records (polled).
 */
export async function settle(h: Harness, op: { id: string; runId: string; updateId?: string }) {
  const { id, runId, updateId } = op;
  if (updateId === undefined) {
    await h.temporal.workflow
      .getHandle(id, runId)
      .result()
      .catch(() => {});
    return h.api.operations.get({ id, runId });
  }
  if (updateId !== 'create') {
    await h.temporal.workflow
      .getHandle(id)
      .getUpdateHandle(updateId, { workflowRunId: runId })
      .result()
      .catch(() => {});
  } else {
    // The saga ends with the VM running, failed or removed: watch the registry (cheap), not
    // the workflow (each query is a workflow task), then ask the workflow once or twice.
    const name = id.replace(/^vm:/, '');
    for (;;) {
      const [row] = await h.sql<{ state: string }[]>`
        SELECT metadata->>'state' AS state FROM nodes WHERE type = 'vm' AND name = ${name}`;
      if (!row || row.state === 'running' || row.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (;;) {
    const detail = await h.api.operations.get({ id, runId, updateId });
    if (detail.status !== 'running' && detail.status !== 'queued') return detail;
    await new Promise((r) => setTimeout(r, 100));
  }
}
