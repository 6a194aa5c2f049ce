import { admitClusterUrl, clusterDriver } from '../../clusters/index.ts';
import type { ClusterCapacity } from '../../clusters/driver.ts';
import { ClusterUnreachableError } from '../../errors.ts';
import {
  getCluster,
  listClusters,
  publicCluster,
  registerCluster,
  removeCluster,
  setDraining,
  type Cluster,
} from '../../store/clusters.ts';
import { z } from 'zod';
import { clusterGetOut, clusterOut, clusterRegisterOut, clusterRemoveOut } from '../outputs.ts';
import { actorOf as actor } from '../context.ts';
import { byCluster, clusterDrainInput, clusterRegisterInput } from '../schemas.ts';
import { ADMIN_READ, ADMIN_WRITE, procedure, router, routes } from '../trpc.ts';

const at = routes('clusters');

/** The clusters the cloud places instances on: the cloud's admins only. */
export const clustersRouter = router({
  /**
   * Records a cluster once the cloud has reached it through its driver: a cluster that does
   * not answer, or refuses the token, is not registered.
   */
  register: procedure
    .meta(at(ADMIN_WRITE, 'POST /clusters'))
    .input(clusterRegisterInput)
    .output(clusterRegisterOut)
    .mutation(async ({ ctx, input }) => {
      const url = input.url === undefined ? null : admitClusterUrl(input.url, ctx.clusterUrls);
      const candidate = {
        id: '',
        name: input.name,
        driver: input.driver,
        url,
        token: input.token ?? null,
        region: input.region,
        tags: input.tags,
        draining: false,
        createdAt: new Date(),
      };
      const capacity = await clusterDriver(ctx, candidate).capacity();
      const made = await registerCluster(ctx.sql, actor(ctx), { ...candidate });
      return { ...publicCluster(made), capacity };
    }),

  list: procedure
    .meta(at(ADMIN_READ, 'GET /clusters'))
    .output(z.array(clusterOut))
    .query(async ({ ctx }) => (await listClusters(ctx.sql)).map(publicCluster)),

  /** With its capacity as the cluster answers now; `unreachable` says why when it does not. */
  get: procedure
    .meta(at(ADMIN_READ, 'GET /clusters/{name}'))
    .input(byCluster)
    .output(clusterGetOut)
    .query(
      async ({
        ctx,
        input,
      }): Promise<Cluster & { capacity: ClusterCapacity | null; unreachable: string | null }> => {
        const cluster = await getCluster(ctx.sql, input.name);
        try {
          const capacity = await clusterDriver(ctx, cluster).capacity();
          return { ...publicCluster(cluster), capacity, unreachable: null };
        } catch (err) {
          // Only what the cloud says in its own words: nothing the far side printed.
          const why = err instanceof ClusterUnreachableError ? err.message : 'it failed to answer';
          return { ...publicCluster(cluster), capacity: null, unreachable: why };
        }
      },
    ),

  /** No new instances there (`draining: false` opens it again); those it has stay. */
  drain: procedure
    .meta(at(ADMIN_WRITE, 'POST /clusters/{name}/drain'))
    .input(clusterDrainInput)
    .output(clusterOut)
    .mutation(async ({ ctx, input }) =>
      publicCluster(await setDraining(ctx.sql, actor(ctx), input.name, input.draining)),
    ),

  remove: procedure
    .meta(at(ADMIN_WRITE, 'DELETE /clusters/{name}'))
    .input(byCluster)
    .output(clusterRemoveOut)
    .mutation(async ({ ctx, input }) => {
      await removeCluster(ctx.sql, actor(ctx), input.name);
      return { name: input.name, removed: true };
    }),
});
