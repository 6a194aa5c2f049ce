import { activityInfo } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import type { DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { withFailureTypes } from './failures.ts';
import { createHostActivities } from './host.ts';
import { createImageActivities } from './images.ts';
import { ImageStore } from '../images/store.ts';
import type { ImagesOptions } from '../config.ts';
import { createMonitorActivities } from './monitor.ts';
import { createVmDiskActivities } from './vm-disks.ts';
import { createVmActivities } from './vm.ts';

export interface ActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  /** The cluster's placement policy, for requests that do not name one. */
  defaultPolicy?: PlacementPolicy;
  images: ImagesOptions;
}

/** Registry changes an activity makes are logged as the worker's, under its workflow run. */
function actor(): ActorOptions {
  const run = activityInfo().workflowExecution;
  return { actor: 'worker', operation: run ? `${run.workflowId}/${run.runId}` : null };
}

/**
 * Every activity, by the name workflows call it by. The names are part of every recorded
 * history (test/replay/ replays some): a name changed here fails runs already under way.
 */
export function createActivities({ sql, drivers, defaultPolicy = 'spread', images }: ActivityDeps) {
  const store = new ImageStore(images.store);
  return withFailureTypes({
    ...createVmActivities({ sql, drivers, defaultPolicy, actor, imageStore: store }),
    ...createVmDiskActivities({ sql, drivers, defaultPolicy, actor, imageStore: store }),
    ...createMonitorActivities({ sql, drivers }),
    ...createHostActivities({ sql, drivers, actor }),
    ...createImageActivities({
      sql,
      drivers,
      store,
      sources: images.sources,
      maxBytes: images.maxBytes,
    }),
  });
}

export type Activities = ReturnType<typeof createActivities>;
