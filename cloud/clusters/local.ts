import type { createCaller } from '../../api/router.ts';
import { TRPCError } from '@trpc/server';
import { ClusterUnreachableError } from '../errors.ts';
import {
  sumCapacity,
  whyUnplaceable,
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

  /**
   * `createTimeoutMs`: how long a create may wait for the cluster to claim its VM (its workers
   * may be down or behind) before the cloud answers that it had no answer; the create itself
   * goes on, and the reconciler settles the instance.
   */
  constructor(
    private readonly api: ClusterCaller,
    private readonly createTimeoutMs = 30_000,
  ) {}

  async capacity(): Promise<ClusterCapacity> {
    return sumCapacity(await this.api.hosts.list());
  }

  async unplaceable(shape: ClusterPlacementInput) {
    const plan = await this.api.placement.explain(shape);
    return plan.host === null ? whyUnplaceable(plan.rejected) : null;
  }

  async createVm(input: ClusterVmInput) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ClusterUnreachableError('local', 'its VM was not claimed in time')),
        this.createTimeoutMs,
      );
    });
    try {
      return await Promise.race([this.api.vms.create(input), late]);
    } finally {
      clearTimeout(timer);
    }
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
