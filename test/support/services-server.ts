import { startApiServer } from '../../api/server.ts';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { TtlCache } from '../../common/ttl-cache.ts';
import { SERVICES_API } from '../../services/api/rest.ts';
import { servicesMount } from '../../services/api/server.ts';
import { localCloud, type OtherClouds } from '../../services/clouds/index.ts';
import { migrateServices } from '../../services/migrate.ts';
import { servicesWorkerFor } from './cloud-cluster.ts';
import { API_LIMITS, type Harness } from './harness.ts';

/**
 * The service layer's APIs over a harness's cloud, served over HTTP as `npm start` serves them
 * (/services/trpc, /services/api, /services/openapi.json); with `worker`, its worker too, so
 * its schedules' reconciles run.
 */
export async function servicesServer(
  h: Harness,
  options: { worker?: boolean; clouds?: OtherClouds } = {},
) {
  const worker = options.worker ? await servicesWorkerFor(h, options.clouds) : null;
  if (!worker) await migrateServices(h.sql);
  const mount = servicesMount(
    {
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: (token) =>
        localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${token}`))),
      ...(options.clouds ? { clouds: options.clouds } : {}),
      callers: new TtlCache(5_000),
    },
    API_LIMITS,
  );
  const server = await startApiServer(h.deps, { host: '127.0.0.1', port: 0, ...API_LIMITS }, [
    mount,
  ]);
  return {
    origin: server.origin,
    trpcUrl: `${server.origin}${SERVICES_API.paths.trpc}`,
    restUrl: `${server.origin}${SERVICES_API.paths.rest}`,
    documentUrl: `${server.origin}${SERVICES_API.paths.document}`,
    async close() {
      await server.close();
      await worker?.shutdown();
    },
  };
}

/** The service layer's API as a client calls it: over HTTP, plain JSON, with a bearer token. */
export { servicesClient } from '../../cli/services-client.ts';
