import { loadConfig } from '../config.ts';
import { connectClient, installLogging, openRegistry, startWorker } from './compose.ts';
import { requireSetting, runUntilSignal } from './lifecycle.ts';
import { ensureMonitorSchedule } from './schedules.ts';

// `npm run worker`: a worker alone, against TEMPORAL_ADDRESS and DATABASE_URL.
await runUntilSignal(async (onStop) => {
  const config = loadConfig();
  installLogging(config.logLevel);
  const databaseUrl = requireSetting('DATABASE_URL', config.databaseUrl);
  const address = requireSetting('TEMPORAL_ADDRESS', config.temporal.address);
  const sql = await openRegistry(databaseUrl);
  onStop(() => sql.end());
  const worker = await startWorker({
    sql,
    address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    placementPolicy: config.placementPolicy,
    drivers: config.drivers,
    images: config.images,
    workflowThreads: config.workflowThreads,
  });
  onStop(worker.shutdown);
  const client = await connectClient(address, config.temporal.namespace);
  onStop(() => client.connection.close());
  const { taskQueue } = config.temporal;
  await ensureMonitorSchedule(client, { taskQueue, ...config.monitor });
  console.log(`vagoth worker polling task queue ${config.temporal.taskQueue} on ${address}`);
  await worker.running;
});
