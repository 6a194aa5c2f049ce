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
import { localCloud } from '../services/clouds/index.ts';
import { migrateServices } from '../services/migrate.ts';
import { deleteSchedule, SERVICES_TASK_QUEUE } from '../services/schedules.ts';

const workflowsPath = fileURLToPath(new URL('../services/workflows.ts', import.meta.url));

/** The cloud of this deployment, as a service or a caller with `token` reaches it. */
const cloudWith = (cloud: CloudDeps) => (token: string) =>
  localCloud(createCloudCaller(createCloudContext(cloud, `Bearer ${token}`)));

/**
 * The service layer's worker over this deployment's cloud: its records migrated (schema
 * `services`), and its reconcile workflows and activities served on their own task queue.
 * Each service reaches the cloud through its API, in-process, with the service's own token.
 */
export async function startServicesWorker(options: {
  address: string;
  namespace: string;
  sql: postgres.Sql;
  cloud: CloudDeps;
  client: Client;
}): Promise<{ shutdown(): Promise<void> }> {
  await migrateServices(options.sql);
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: SERVICES_TASK_QUEUE,
    workflowsPath,
    activities: createServiceActivities({
      sql: options.sql,
      cloudFor: cloudWith(options.cloud),
      dropSchedule: (project, name) => deleteSchedule(options.client, project, name),
    }),
  });
  const running = worker.run().finally(() => connection.close());
  return {
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
  client: Client;
  api: { maxBodyBytes: number; maxBatchSize: number; tokenCacheMs: number };
}): Promise<{ mount: Mount; close(): Promise<void> }> {
  const worker = await startServicesWorker(options);
  const mount = servicesMount(
    {
      sql: options.sql,
      temporal: options.client,
      cloudFor: cloudWith(options.cloud),
      callers: new TtlCache(options.api.tokenCacheMs),
    },
    options.api,
  );
  return { mount, close: () => worker.shutdown() };
}
