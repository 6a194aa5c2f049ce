import { activityInfo } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import type { DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { insertHost, type NewHost } from '../registry/hosts.ts';
import { placeVm } from '../registry/allocate.ts';
import { claimVm } from '../registry/claim-vm.ts';
import {
  deleteVm,
  getVmAndHost,
  transitionVm,
  type VmAndHost,
  type VmRequest,
} from '../registry/vms.ts';
import type { Host, HostAddress, OperationRef, Vm, VmState } from '../registry/types.ts';
import { nullIfNotFound } from '../registry/errors.ts';
import { withFailureTypes } from './failures.ts';
import {
  createVmActivities,
  recordTransition,
  type ShutdownRequest,
  type StepStates,
  type Transition,
} from './vm.ts';
import { recordedVolumes } from '../registry/vm-volumes.ts';
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
  /**
   * Undefines the VM's domain on its host, if placed; answers how many volumes it has left to
   * wipe, on any host (a VM the monitor took off a host that lost it keeps its volumes there).
   */
  async function undefineOnHost({ vm, host }: VmAndHost): Promise<number> {
    if (host) await drivers.get(host).undefine({ id: vm.id, name: vm.name });
    return recordedVolumes(vm.keys).length;
  }

  return withFailureTypes({
    ...createVmActivities({ sql, drivers, defaultPolicy, actor }),
    ...createMonitorActivities({ sql, drivers }),
    ...createHostActivities({ sql, drivers, actor }),

    /** Memory comes from the host; vCPUs too, unless declared (geats reports no CPU count). */
    async registerHost({ vcpus, ...host }: HostRegistration): Promise<Host> {
      const driver = drivers.get(host);
      const { capacity } = await driver.status();
      // Which hypervisor this is, so a second name or spelling of it is refused.
      const identity = await driver.hostId?.();
      return insertHost(
        sql,
        {
          ...host,
          identity,
          capacity: { vcpus: vcpus ?? capacity.vcpus, memoryMiB: capacity.memoryMiB },
        },
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
     * Powers the domain off and forgets it, once the driver has checked it is this VM's.
     * Idempotent: a VM never placed, or a domain already gone, is success. Answers how many
     * volumes the registry records for the VM, still to be wiped (none for a VM without disks).
     */
    async undefineDomain(vmId: string): Promise<number> {
      const found = await getVmAndHost(sql, vmId).catch(nullIfNotFound);
      return found ? undefineOnHost(found) : 0;
    },

    /**
     * Decommission's first step: enters `enter` (decommissioning), powers the domain off and
     * undefines it as undefineDomain does, then removes a VM that has no volumes left to wipe
     * (its keys and its room on the host go with it). Answers how many volumes are left: if
     * any, the caller wipes them, then removes the VM. A VM already removed is success (a
     * retry whose first attempt finished).
     */
    async retireVm(vmId: string, enter: Transition): Promise<number> {
      const found = await recordTransition(sql, vmId, enter, actor()).catch(nullIfNotFound);
      if (!found) return 0;
      const volumes = await undefineOnHost(found);
      if (volumes === 0) await deleteVm(sql, vmId, actor());
      return volumes;
    },

    async deleteVm(vmId: string): Promise<void> {
      await deleteVm(sql, vmId, actor());
    },
  });
}

export type Activities = ReturnType<typeof createActivities>;
