import { loadConfig } from '../config.ts';
import { connect } from '../registry/db.ts';
import { otherClouds, vagothCloud } from '../services/clouds/index.ts';
import { connectClient, installLogging } from './compose.ts';
import { requireSetting, runUntilSignal } from './lifecycle.ts';
import { startServicesWorker } from './services.ts';

// `npm run services-worker`: the service layer's worker in a process of its own, reaching the
// cloud over HTTP (VAGOTH_SERVICES_CLOUD_URL) with each service's token (and the other clouds
// of VAGOTH_SERVICES_CLOUDS with its tokens there), its records in
// DATABASE_URL (schema `services`), against TEMPORAL_ADDRESS.
await runUntilSignal(async (onStop) => {
  const config = loadConfig();
  installLogging(config.logLevel);
  const address = requireSetting('TEMPORAL_ADDRESS', config.temporal.address);
  const url = requireSetting('VAGOTH_SERVICES_CLOUD_URL', config.services.cloudUrl);
  const sql = connect(requireSetting('DATABASE_URL', config.databaseUrl));
  onStop(() => sql.end());
  const client = await connectClient(address, config.temporal.namespace);
  onStop(() => client.connection.close());
  const worker = await startServicesWorker({
    address,
    namespace: config.temporal.namespace,
    sql,
    client,
    cloudFor: (token) => vagothCloud({ url, token, timeoutMs: config.cloud.clusterTimeoutMs }),
    clouds: otherClouds(config.services.clouds, config.cloud.clusterTimeoutMs),
    probe: config.services.probe,
  });
  onStop(worker.shutdown);
  // A parent process waits for this line before it counts the worker as up.
  console.log(`vagoth-services-worker-ready on ${address}`);
  await worker.running;
});
