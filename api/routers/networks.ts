import { createNetwork, getNetwork, listNetworks } from '../../registry/networks.ts';
import { byName, networkCreateInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

export const networksRouter = router({
  /** An address pool: NICs on it get the next free address unless they name one. */
  create: procedure
    .input(networkCreateInput)
    .mutation(({ ctx, input }) => createNetwork(ctx.sql, input)),
  list: procedure.query(({ ctx }) => listNetworks(ctx.sql)),
  get: procedure.input(byName).query(({ ctx, input }) => getNetwork(ctx.sql, input.name)),
});
