import type { createCaller } from '../../api/router.ts';
import { sumCapacity, type ClusterCapacity, type ClusterDriver } from './driver.ts';

/** The cluster API as an in-process caller (workers/ makes it, with the cloud's principal). */
export type ClusterCaller = ReturnType<typeof createCaller>;

/** The cluster controller of this deployment, called in-process through its API. */
export class LocalCluster implements ClusterDriver {
  readonly kind = 'local';

  constructor(private readonly api: ClusterCaller) {}

  async capacity(): Promise<ClusterCapacity> {
    return sumCapacity(await this.api.hosts.list());
  }
}
