import { hostsRouter } from './routers/hosts.ts';
import { operationsRouter } from './routers/operations.ts';
import { vmsRouter } from './routers/vms.ts';
import { createCallerFactory, router } from './trpc.ts';

export const appRouter = router({
  hosts: hostsRouter,
  vms: vmsRouter,
  operations: operationsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
