import { EMBEDDED_DEFAULTS, loadConfig } from '../config.ts';
import { createContextInner } from '../api/context.ts';
import { apiDeps, ensureAdminToken } from './api-deps.ts';
import { createCaller } from '../api/router.ts';
import { startApiServer } from '../api/server.ts';
import { CLOUD_TRPC_PATH } from '../cloud/api/server.ts';
import { SERVICES_TRPC_PATH } from '../services/api/server.ts';
import { startLayersAbove } from './cloud.ts';
import { startEmbeddedPostgres, startTemporalDevServer } from './embedded.ts';
import { connectClient, installLogging, openRegistry, startWorker } from './compose.ts';
import {
  ensureDefaultNetwork,
  registerSimulatedHosts,
  restoreSimulatedDomains,
} from './simulated-hosts.ts';
import { runUntilSignal } from './lifecycle.ts';
import { ensureMonitorSchedule } from './schedules.ts';

// `npm start`: all of vagoth in one process for a laptop. Whatever is not configured
// (TEMPORAL_ADDRESS, DATABASE_URL) is started here and stopped on Ctrl-C.
await runUntilSignal(async (onStop) => {
  // Its simulated hosts are libvirt's test driver, which `npm run worker` refuses by default.
  const config = loadConfig(undefined, EMBEDDED_DEFAULTS);
  const { temporal: t } = config;
  installLogging(config.logLevel);

  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort);
    onStop(pg.stop);
    databaseUrl = pg.address;
  }
  let address = t.address;
  if (!address) {
    const dev = await startTemporalDevServer({
      cli: t.cli,
      dataDir: config.dataDir,
      port: t.devPort,
      uiPort: t.devUiPort,
    });
    onStop(dev.stop);
    address = dev.address;
  }

  const sql = await openRegistry(databaseUrl);
  onStop(() => sql.end());
  const worker = await startWorker({
    sql,
    address,
    namespace: t.namespace,
    taskQueue: t.taskQueue,
    placementPolicy: config.placementPolicy,
    drivers: config.drivers,
    images: config.images,
    workflowThreads: config.workflowThreads,
  });
  onStop(worker.shutdown);
  const temporal = await connectClient(address, t.namespace);
  onStop(() => temporal.connection.close());
  const deps = apiDeps(config, sql, temporal);
  const tokenFile = await ensureAdminToken(sql, config.adminTokenFile);
  const { cloud, mounts, close } = await startLayersAbove(config, sql, deps, {
    client: temporal,
    address,
  });
  onStop(close);
  const api = await startApiServer(deps, config.api, mounts);
  onStop(api.close);

  // vagoth's own set-up, in this process: no token to hold, so it is given an admin's rights.
  const caller = createCaller(
    createContextInner(deps, { principal: { tokenId: null, name: 'vagoth', role: 'admin' } }),
  );
  await ensureDefaultNetwork(caller);
  const hosts = await registerSimulatedHosts(caller, config.dataDir, config.simulatedHosts);
  const restored = await restoreSimulatedDomains(sql, worker.drivers);
  // Only now: a run before the simulated domains are back would find every VM missing.
  await ensureMonitorSchedule(temporal, { taskQueue: t.taskQueue, ...config.monitor });

  console.log(`vagoth is running
  API:          ${api.url}
  Admin token:  ${config.adminTokenFile}${tokenFile ? ' (new)' : ''}
${
  cloud
    ? `  Cloud API:    ${api.origin}${CLOUD_TRPC_PATH}
  Cloud token:  ${config.cloud.adminTokenFile}${cloud.tokenFile ? ' (new)' : ''}
  Services API: ${api.origin}${SERVICES_TRPC_PATH}
`
    : ''
}  Temporal UI:  ${t.uiUrl}
  Temporal:     ${address} (namespace ${t.namespace})
  Registry:     ${databaseUrl.replace(/\/\/[^@/]*@/, '//')}
  Hosts:        ${hosts.join(', ') || '(none simulated)'}${restored ? ` (${restored} simulated domains restored)` : ''}
Press Ctrl-C to stop.`);
});
