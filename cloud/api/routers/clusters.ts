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
import { actorOf as actor } from '../context.ts';
import { byCluster, clusterDrainInput, clusterRegisterInput } from '../schemas.ts';
import { ADMIN_READ, ADMIN_WRITE, procedure, router } from '../trpc.ts';

/** The clusters the cloud places instances on: the cloud's admins only. */
export const clustersRouter = router({
  /**
   * Records a cluster once the cloud has reached it through its driver: a cluster that does
   * not answer, or refuses the token, is not registered.
   */
  register: procedure
    .meta(ADMIN_WRITE)
    .input(clusterRegisterInput)
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
    .meta(ADMIN_READ)
    .query(async ({ ctx }) => (await listClusters(ctx.sql)).map(publicCluster)),

  /** With its capacity as the cluster answers now; `unreachable` says why when it does not. */
  get: procedure
    .meta(ADMIN_READ)
    .input(byCluster)
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
    .meta(ADMIN_WRITE)
    .input(clusterDrainInput)
    .mutation(async ({ ctx, input }) =>
      publicCluster(await setDraining(ctx.sql, actor(ctx), input.name, input.draining)),
    ),

  remove: procedure
    .meta(ADMIN_WRITE)
    .input(byCluster)
    .mutation(async ({ ctx, input }) => {
      await removeCluster(ctx.sql, actor(ctx), input.name);
      return { name: input.name, removed: true };
    }),
});
