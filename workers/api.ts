import { loadConfig } from '../config.ts';
import { startApiServer } from '../api/server.ts';
import { CLOUD_TRPC_PATH } from '../cloud/api/server.ts';
import { SERVICES_TRPC_PATH } from '../services/api/server.ts';
import { startLayersAbove } from './cloud.ts';
import { apiDeps, ensureAdminToken } from './api-deps.ts';
import type { NativeConnection } from '@temporalio/worker';
import { connectClient, openRegistry } from './compose.ts';
import { ensureSearchAttributes } from './search-attributes.ts';
import { requireSetting, runUntilSignal } from './lifecycle.ts';

// `npm run api`: the tRPC API alone, against TEMPORAL_ADDRESS and DATABASE_URL.
await runUntilSignal(async (onStop) => {
  const config = loadConfig();
  const { temporal: t } = config;
  const sql = await openRegistry(requireSetting('DATABASE_URL', config.databaseUrl));
  onStop(() => sql.end());
  const temporal = await connectClient(requireSetting('TEMPORAL_ADDRESS', t.address), t.namespace);
  onStop(() => temporal.connection.close());
  // The API starts workflows with vagoth's search attributes: they must exist first.
  await ensureSearchAttributes(temporal.connection as NativeConnection, t.namespace);
  const tokenFile = await ensureAdminToken(sql, config.adminTokenFile);
  const deps = apiDeps(config, sql, temporal);
  const { cloud, mounts, close } = await startLayersAbove(config, sql, deps, {
    client: temporal,
    address: requireSetting('TEMPORAL_ADDRESS', t.address),
  });
  onStop(close);
  const api = await startApiServer(deps, config.api, mounts);
  onStop(api.close);
  console.log(`vagoth API on ${api.url}`);
  if (cloud) console.log(`the cloud's API on ${api.origin}${CLOUD_TRPC_PATH}`);
  if (cloud) console.log(`the service layer's API on ${api.origin}${SERVICES_TRPC_PATH}`);
  if (tokenFile) console.log(`an admin token for this registry is in ${tokenFile}`);
  if (cloud?.tokenFile) console.log(`an admin token for the cloud is in ${cloud.tokenFile}`);
});
