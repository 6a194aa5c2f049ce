import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import { DriverError, type DriverPool } from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { getHost, insertHost, type NewHost } from '../registry/hosts.ts';
import { placeVm } from '../registry/allocate.ts';
import { claimVm } from '../registry/claim-vm.ts';
import { deleteVm, getVmById, transitionVm, type VmRequest } from '../registry/vms.ts';
import type { Host, HostAddress, OperationRef, Vm, VmState } from '../registry/types.ts';
import { withFailureTypes } from './failures.ts';
import { createMonitorActivities } from './monitor.ts';

export type { Host, HostAddress, OperationRef, Vm, VmRequest, VmState };

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
  async function domainOf(vmId: string) {
    const vm = await getVmById(sql, vmId);
    if (!vm.host) return null;
    const host = await getHost(sql, vm.host);
    return { vm, driver: drivers.get(host) };
  }

  return withFailureTypes({
    ...createMonitorActivities({ sql, drivers }),
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
      from: VmState[],
      to: VmState,
      patch: { operation?: OperationRef; error?: string } = {},
    ): Promise<void> {
      await transitionVm(sql, vmId, from, to, patch, actor());
    },

    async placeVm(vm: Pick<Vm, 'id' | 'definition'>): Promise<string> {
      return (await placeVm(sql, vm, defaultPolicy, actor())).host;
    },

    async defineDomain(vmId: string): Promise<void> {
      const found = await domainOf(vmId);
      if (!found) throw new DriverError('rejected', `VM ${vmId} has no host`);
      await found.driver.define({
        id: found.vm.id,
        name: found.vm.name,
        definition: found.vm.definition,
      });
    },

    async startDomain(vmId: string): Promise<void> {
      const found = await domainOf(vmId);
      if (!found) throw new DriverError('rejected', `VM ${vmId} has no host`);
      await found.driver.start(found.vm.name);
    },

    /** Polls the host until it reports the domain running; heartbeats so a lost worker is noticed. */
    async waitRunning(vmId: string): Promise<void> {
      const found = await domainOf(vmId);
      if (!found) throw new DriverError('rejected', `VM ${vmId} has no host`);
      for (
        let attempt = (activityInfo().heartbeatDetails as number | undefined) ?? 0;
        ;
        attempt++
      ) {
        const info = await found.driver.info(found.vm.name);
        if (!info)
          throw new DriverError('not-found', `${found.vm.name} vanished from ${found.vm.host}`);
        if (info.state === 'running') return;
        heartbeat(attempt);
        await sleep(Math.min(250 * 2 ** attempt, 5000));
      }
    },

    async stopDomain(vmId: string): Promise<void> {
      const found = await domainOf(vmId);
      if (found) await found.driver.stop(found.vm.name);
    },

    /** Idempotent: a VM never placed, or a domain already gone, is success. */
    async undefineDomain(vmId: string): Promise<void> {
      const found = await domainOf(vmId).catch((err: unknown) => {
        if (err instanceof Error && err.name === 'NotFoundError') return null;
        throw err;
      });
      if (found) await found.driver.undefine({ id: found.vm.id, name: found.vm.name });
    },

    async deleteVm(vmId: string): Promise<void> {
      await deleteVm(sql, vmId, actor());
    },
  });
}

export type Activities = ReturnType<typeof createActivities>;
