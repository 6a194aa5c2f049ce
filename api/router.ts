import { hostsRouter } from './routers/hosts.ts';
import { imagesRouter } from './routers/images.ts';
import { networksRouter } from './routers/networks.ts';
import { nodesRouter } from './routers/nodes.ts';
import { operationsRouter } from './routers/operations.ts';
import { placementRouter } from './routers/placement.ts';
import { tokensRouter } from './routers/tokens.ts';
import { vmsRouter } from './routers/vms.ts';
import { createCallerFactory, router } from './trpc.ts';

export const appRouter = router({
  hosts: hostsRouter,
  vms: vmsRouter,
  operations: operationsRouter,
  networks: networksRouter,
  images: imagesRouter,
  placement: placementRouter,
  nodes: nodesRouter,
  tokens: tokensRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
