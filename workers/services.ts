import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type postgres from 'postgres';
import { createCloudContext, type CloudDeps } from '../cloud/api/context.ts';
import { createCloudCaller } from '../cloud/api/router.ts';
import { createServiceActivities } from '../services/activities.ts';
import { localCloud } from '../services/clouds/index.ts';
import { migrateServices } from '../services/migrate.ts';
import { deleteSchedule, SERVICES_TASK_QUEUE } from '../services/schedules.ts';

const workflowsPath = fileURLToPath(new URL('../services/workflows.ts', import.meta.url));

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
      cloudFor: (token) =>
        localCloud(createCloudCaller(createCloudContext(options.cloud, `Bearer ${token}`))),
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
