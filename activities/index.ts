import { activityInfo } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import type { DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { insertHost, type NewHost } from '../registry/hosts.ts';
import { placeVm } from '../registry/allocate.ts';
import { claimVm } from '../registry/claim-vm.ts';
import { deleteVm, getVmAndHost, transitionVm, type VmRequest } from '../registry/vms.ts';
import type { Host, HostAddress, OperationRef, Vm, VmState } from '../registry/types.ts';
import { NotFoundError } from '../registry/errors.ts';
import { withFailureTypes } from './failures.ts';
import {
  createVmActivities,
  recordTransition,
  type ShutdownRequest,
  type StepStates,
  type Transition,
} from './vm.ts';
import { volumesOf } from '../registry/vm-volumes.ts';
import { createMonitorActivities } from './monitor.ts';
import { createHostActivities } from './host.ts';

export type {
  Host,
  HostAddress,
  OperationRef,
  ShutdownRequest,
  StepStates,
  Transition,
  Vm,
  VmRequest,
  VmState,
};

/** A host to record, as hosts.register takes it. */
export type HostRegistration = Omit<NewHost, 'capacity'> & { vcpus?: number | undefined };

export interface ActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  /** The cluster's placement policy, for requests that do not name one. */
  defaultPolicy?: PlacementPolicy;
}

/** Registry changes an activity makes are logged as the worker's, under its workflow run. */
function actor(): ActorOptions {
  const run = activityInfo().workflowExecution;
  return { actor: 'worker', operation: run ? `${run.workflowId}/${run.runId}` : null };
}

export function createActivities({ sql, drivers, defaultPolicy = 'spread' }: ActivityDeps) {
  return withFailureTypes({
    ...createVmActivities({ sql, drivers, defaultPolicy, actor }),
    ...createMonitorActivities({ sql, drivers }),
    ...createHostActivities({ sql, drivers, actor }),

    /** Memory comes from the host; vCPUs too, unless declared (geats reports no CPU count). */
    async registerHost({ vcpus, ...host }: HostRegistration): Promise<Host> {
      const { capacity } = await drivers.get(host).status();
      return insertHost(
        sql,
        { ...host, capacity: { vcpus: vcpus ?? capacity.vcpus, memoryMiB: capacity.memoryMiB } },
        actor(),
      );
    },

    async claimVm(request: VmRequest, operation: OperationRef): Promise<Vm> {
      return claimVm(sql, request, operation, actor());
    },

    async transitionVm(
      vmId: string,
      from: VmState[] | 'any',
      to: VmState,
      patch: { operation?: OperationRef; error?: string | null } = {},
    ): Promise<void> {
      await transitionVm(sql, vmId, from, to, patch, actor());
    },

    /** Enters `placing` (if asked) and places the VM: its host. */
    async placeVm(vm: Pick<Vm, 'id' | 'definition'>, enter?: Transition): Promise<string> {
      if (enter) await recordTransition(sql, vm.id, enter, actor());
      return (await placeVm(sql, vm, defaultPolicy, actor())).host;
    },

    /**
     * Powers the domain off and forgets it, once the driver has checked it is this VM's;
     * entering `enter` first, if given (decommissioning). Idempotent: a VM never placed, or a
     * domain already gone, is success. Answers how many volumes the registry records for the
     * VM, still to be wiped (none for a VM without disks).
     */
    async undefineDomain(vmId: string, enter?: Transition): Promise<number> {
      const found = enter
        ? await recordTransition(sql, vmId, enter, actor())
        : await getVmAndHost(sql, vmId).catch((err: unknown) => {
            if (err instanceof NotFoundError) return null;
            throw err;
          });
      if (!found?.host) return 0;
      const { vm, host } = found;
      await drivers.get(host).undefine({ id: vm.id, name: vm.name });
      return volumesOf(vm.keys).length;
    },

    async deleteVm(vmId: string): Promise<void> {
      await deleteVm(sql, vmId, actor());
    },
  });
}

export type Activities = ReturnType<typeof createActivities>;
