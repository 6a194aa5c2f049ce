import type postgres from 'postgres';
import type { ApiDeps } from '../api/context.ts';
import { createContextInner } from '../api/context.ts';
import { createCaller } from '../api/router.ts';
import type { Mount } from '../api/server.ts';
import { cloudCaches, type CloudDeps } from '../cloud/api/context.ts';
import { cloudMount } from '../cloud/api/server.ts';
import { LocalCluster } from '../cloud/clusters/local.ts';
import { migrateCloud } from '../cloud/migrate.ts';
import { startReconciler } from '../cloud/reconciler.ts';
import { listClusters, registerCluster } from '../cloud/store/clusters.ts';
import { bootstrapCloudAdmin } from '../cloud/store/tokens.ts';
import { otherClouds } from '../services/clouds/index.ts';
import type { Config } from '../config.ts';
import type { Client } from '@temporalio/client';
import { writeSecret } from './api-deps.ts';
import { startServices } from './services.ts';

export interface Cloud {
  mount: Mount;
  deps: CloudDeps;
  /** Where a new admin token was written; null when one existed. */
  tokenFile: string | null;
  /** That token's secret, for the process that made it; null when one existed. */
  adminToken: string | null;
  /** Stops its reconciler (after the round under way). */
  close(): Promise<void>;
}

/**
 * The cloud layer over this deployment's cluster: its tables migrated (schema `cloud`), its
 * built-in admin with a token (written to `cloud.adminTokenFile` when made), the local cluster
 * registered as `local` the first time, its API to mount under /cloud/, and its reconciler
 * (cloud/reconciler.ts) running. The cloud reaches
 * the cluster only through its API, here as an in-process caller with an admin's rights.
 */
export async function startCloud(
  config: {
    cloud: Config['cloud'];
    api: { maxBodyBytes: number; maxBatchSize: number; tokenCacheMs: number };
  },
  sql: postgres.Sql,
  cluster: ApiDeps | null,
): Promise<Cloud> {
  await migrateCloud(sql);
  const localCluster = cluster
    ? new LocalCluster(
        createCaller(
          createContextInner(cluster, {
            principal: { tokenId: null, name: 'cloud', role: 'admin' },
          }),
        ),
        // In-process, a create waits on the cluster's workers: longer than a remote call.
        Math.max(config.cloud.clusterTimeoutMs, 30_000),
      )
    : null;
  const deps: CloudDeps = {
    sql,
    localCluster,
    clusterUrls: config.cloud.clusterUrls,
    clusterTimeoutMs: config.cloud.clusterTimeoutMs,
    caches: cloudCaches(config.api.tokenCacheMs),
  };
  const token = await bootstrapCloudAdmin(sql, (secret) =>
    writeSecret(config.cloud.adminTokenFile, secret),
  );
  if (localCluster && !(await listClusters(sql)).some((c) => c.driver === 'local')) {
    await registerCluster(
      sql,
      { userId: null, tokenId: null },
      { name: 'local', driver: 'local', url: null, token: null, region: 'default', tags: {} },
    ).catch((err: unknown) => {
      // Another process registered it first.
      if (!(err instanceof Error && err.name === 'CloudConflictError')) throw err;
    });
  }
  const reconciler = startReconciler(deps, config.cloud.reconcileMs);
  return {
    close: () => reconciler.stop(),
    mount: cloudMount(deps, config.api),
    deps,
    tokenFile: token === null ? null : config.cloud.adminTokenFile,
    adminToken: token,
  };
}

/**
 * The layers above this deployment's cluster, when `cloud.enabled`: the cloud, and the
 * service layer over it (its worker and API). Answers what to mount beside the cluster's API,
 * and what to stop (the services before the cloud they call).
 */
export async function startLayersAbove(
  config: Parameters<typeof startCloud>[0] & {
    api: { tokenCacheMs: number };
    temporal: { namespace: string };
  } & Pick<Config, 'services'>,
  sql: postgres.Sql,
  cluster: ApiDeps,
  temporal: { client: Client; address: string },
) {
  if (!config.cloud.enabled) return { cloud: null, mounts: [] as Mount[], close: async () => {} };
  const cloud = await startCloud(config, sql, cluster);
  const services = await startServices({
    address: temporal.address,
    namespace: config.temporal.namespace,
    sql,
    cloud: cloud.deps,
    clouds: otherClouds(config.services.clouds, config.cloud.clusterTimeoutMs),
    client: temporal.client,
    probe: config.services.probe,
    api: config.api,
  }).catch(async (err: unknown) => {
    await cloud.close();
    throw err;
  });
  return {
    cloud,
    mounts: [cloud.mount, services.mount],
    async close() {
      await services.close();
      await cloud.close();
    },
  };
}
