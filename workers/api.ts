import { loadConfig } from '../config.ts';
import { startApiServer } from '../api/server.ts';
import { connectClient, openRegistry } from './compose.ts';
import { requireSetting, runUntilSignal } from './lifecycle.ts';

// `npm run api`: the tRPC API alone, against TEMPORAL_ADDRESS and DATABASE_URL.
await runUntilSignal(async (onStop) => {
  const config = loadConfig();
  const { temporal: t } = config;
  const sql = await openRegistry(requireSetting('DATABASE_URL', config.databaseUrl));
  onStop(() => sql.end());
  const temporal = await connectClient(requireSetting('TEMPORAL_ADDRESS', t.address), t.namespace);
  onStop(() => temporal.connection.close());
  const api = await startApiServer(
    {
      sql,
      temporal,
      taskQueue: t.taskQueue,
      namespace: t.namespace,
      temporalUiUrl: t.uiUrl,
      hostUris: config.drivers.hostUris,
    },
    config.api,
  );
  onStop(api.close);
  console.log(`vagoth API on ${api.url}`);
});
