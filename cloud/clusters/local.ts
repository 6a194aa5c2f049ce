import type { createCaller } from '../../api/router.ts';
import { TRPCError } from '@trpc/server';
import {
  sumCapacity,
  type ClusterCapacity,
  type ClusterDriver,
  type ClusterOperationRef,
  type ClusterPlacementInput,
  type ClusterVmInput,
  type VmVerb,
} from './driver.ts';

/** The cluster API as an in-process caller (workers/ makes it, with the cloud's principal). */
export type ClusterCaller = ReturnType<typeof createCaller>;

/** The cluster controller of this deployment, called in-process through its API. */
export class LocalCluster implements ClusterDriver {
  readonly kind = 'local';

  constructor(private readonly api: ClusterCaller) {}

  async capacity(): Promise<ClusterCapacity> {
    return sumCapacity(await this.api.hosts.list());
  }

  async places(shape: ClusterPlacementInput) {
    return (await this.api.placement.explain(shape)).host !== null;
  }

  createVm(input: ClusterVmInput) {
    return this.api.vms.create(input);
  }

  async getVm(name: string) {
    return this.api.vms.get({ name }).catch((err: unknown) => {
      if (err instanceof TRPCError && err.code === 'NOT_FOUND') return null;
      throw err;
    });
  }

  getVms(names: readonly string[]) {
    return this.api.vms.list({ names: [...names] });
  }

  async operate(name: string, verb: VmVerb) {
    return (await this.api.vms[verb]({ name })).operation;
  }

  operation(ref: ClusterOperationRef) {
    return this.api.operations.get(ref);
  }
}
