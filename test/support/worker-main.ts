import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../config.ts';
import { installLogging, openRegistry, startWorker } from '../../workers/compose.ts';
import { requireSetting, runUntilSignal } from '../../workers/lifecycle.ts';

/**
 * The production worker (workers/worker.ts) as a child process a test can SIGKILL, with one
 * difference: it may load a prebuilt workflow bundle (argv[2]), so a restart takes a second
 * instead of a bundling. Settings come from the environment as for `npm run worker`.
 */
await runUntilSignal(async (onStop) => {
  const config = loadConfig();
  installLogging(config.logLevel);
  const bundlePath = process.argv[2];
  const workflowBundle = bundlePath ? { code: await readFile(bundlePath, 'utf8') } : undefined;
  const sql = await openRegistry(requireSetting('DATABASE_URL', config.databaseUrl));
  onStop(() => sql.end());
  const worker = await startWorker({
    sql,
    address: requireSetting('TEMPORAL_ADDRESS', config.temporal.address),
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    placementPolicy: config.placementPolicy,
    drivers: config.drivers,
    ...(workflowBundle ? { workflowBundle } : {}),
  });
  onStop(worker.shutdown);
  // The parent waits for this line before it counts the worker as up.
  console.log('vagoth-worker-ready');
  await worker.running;
});
