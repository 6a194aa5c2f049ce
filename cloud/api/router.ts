import { clustersRouter } from './routers/clusters.ts';
import { projectsRouter } from './routers/projects.ts';
import { tokensRouter } from './routers/tokens.ts';
import { usersRouter } from './routers/users.ts';
import { createCloudCallerFactory, router } from './trpc.ts';

/** The cloud layer's API, served under /cloud/trpc beside the cluster's /trpc. */
export const cloudRouter = router({
  clusters: clustersRouter,
  users: usersRouter,
  projects: projectsRouter,
  tokens: tokensRouter,
});

export type CloudRouter = typeof cloudRouter;
export const createCloudCaller = createCloudCallerFactory(cloudRouter);
