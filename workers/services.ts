import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type postgres from 'postgres';
import type { Mount } from '../api/server.ts';
import { createCloudContext, type CloudDeps } from '../cloud/api/context.ts';
import { TtlCache } from '../common/ttl-cache.ts';
import { servicesMount } from '../services/api/server.ts';
import { createCloudCaller } from '../cloud/api/router.ts';
import { createServiceActivities } from '../services/activities.ts';
import type { CloudDriver } from '../services/clouds/driver.ts';
import { localCloud, type OtherClouds } from '../services/clouds/index.ts';
import { migrateServices } from '../services/migrate.ts';
import { makeProber } from '../services/probe.ts';
import { startRevocationSweep } from '../services/revocations.ts';
import { deleteSchedule, restoreSchedules, SERVICES_TASK_QUEUE } from '../services/schedules.ts';
import { allSchedules } from '../services/store.ts';

/** The service layer's workflows, bundled by its worker (and by the replay test). */
export const servicesWorkflowsPath = fileURLToPath(
  new URL('../services/workflows.ts', import.meta.url),
);

/** The cloud of this deployment, as a service or a caller with `token` reaches it. */
export const localCloudFor = (cloud: CloudDeps) => (token: string) =>
  localCloud(createCloudCaller(createCloudContext(cloud, `Bearer ${token}`)));

/**
 * The service layer's worker: its records migrated (schema `services`), and its reconcile
 * workflows and activities served on their own task queue. Each service reaches its cloud
 * through the cloud's API with the service's own token: in-process (localCloudFor) beside the
 * cloud, or over HTTP (vagothCloud) from a process of its own.
 */
export async function startServicesWorker(options: {
  address: string;
  namespace: string;
  sql: postgres.Sql;
  cloudFor: (token: string) => CloudDriver;
  /** Other vagoth clouds services may span (config.services.clouds, over HTTP); none by default. */
  clouds?: OtherClouds;
  client: Client;
  /** Where health checks may go (config.services.probe); none by default. */
  probe?: { cidrs: readonly string[]; timeoutMs: number };
  /** How often tokens whose revoke a cloud did not take are tried again (default 60 s). */
  revocationSweepMs?: number;
}): Promise<{ running: Promise<void>; shutdown(): Promise<void> }> {
  await migrateServices(options.sql);
  const { restored, moved } = await restoreSchedules(
    options.client,
    await allSchedules(options.sql),
  );
  if (restored.length > 0) console.log(`services: schedules made again for ${restored.join(', ')}`);
  if (moved.length > 0)
    console.log(`services: ${moved.length} schedules moved to today's reconcile`);
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: SERVICES_TASK_QUEUE,
    workflowsPath: servicesWorkflowsPath,
    activities: createServiceActivities({
      sql: options.sql,
      cloudFor: options.cloudFor,
      ...(options.clouds ? { clouds: options.clouds } : {}),
      dropSchedule: (project, name) => deleteSchedule(options.client, project, name),
      probe: makeProber(options.probe ?? { cidrs: [], timeoutMs: 2_000 }),
    }),
  });
  const sweep = startRevocationSweep(
    {
      sql: options.sql,
      cloudFor: options.cloudFor,
      ...(options.clouds ? { clouds: options.clouds } : {}),
    },
    options.revocationSweepMs ?? 60_000,
  );
  const running = worker.run().finally(async () => {
    await sweep.stop();
    await connection.close();
  });
  return {
    running,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}

/**
 * The service layer beside this deployment's cloud: its worker, and its API to mount under
 * /services/ (each call's cloud token checked through the cloud).
 */
export async function startServices(options: {
  address: string;
  namespace: string;
  sql: postgres.Sql;
  cloud: CloudDeps;
  clouds?: OtherClouds;
  client: Client;
  probe: { cidrs: readonly string[]; timeoutMs: number };
  api: { maxBodyBytes: number; maxBatchSize: number; tokenCacheMs: number };
}): Promise<{ mount: Mount; close(): Promise<void> }> {
  const cloudFor = localCloudFor(options.cloud);
  const worker = await startServicesWorker({ ...options, cloudFor });
  const mount = servicesMount(
    {
      sql: options.sql,
      temporal: options.client,
      cloudFor,
      ...(options.clouds ? { clouds: options.clouds } : {}),
      callers: new TtlCache(options.api.tokenCacheMs),
    },
    options.api,
  );
  return { mount, close: () => worker.shutdown() };
}
