import { clustersRouter } from './routers/clusters.ts';
import { eventsRouter } from './routers/events.ts';
import { imagesRouter, networksRouter } from './routers/grants.ts';
import { instancesRouter } from './routers/instances.ts';
import { projectsRouter } from './routers/projects.ts';
import { quotasRouter } from './routers/quotas.ts';
import { tokensRouter } from './routers/tokens.ts';
import { usersRouter } from './routers/users.ts';
import { createCloudCallerFactory, router } from './trpc.ts';

/** The cloud layer's API, served under /cloud/trpc beside the cluster's /trpc. */
export const cloudRouter = router({
  clusters: clustersRouter,
  users: usersRouter,
  projects: projectsRouter,
  tokens: tokensRouter,
  instances: instancesRouter,
  quotas: quotasRouter,
  networks: networksRouter,
  images: imagesRouter,
  events: eventsRouter,
});

export type CloudRouter = typeof cloudRouter;
export const createCloudCaller = createCloudCallerFactory(cloudRouter);
