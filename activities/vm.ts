import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import type {
  OperationRef,
  ShutdownRequest,
  StepStates,
  Transition,
  Vm,
  VmRequest,
  VmState,
} from '../common/messages.ts';
import { DriverError, type VolumeRef, wantsStorage } from '../drivers/index.ts';
import { placeVm } from '../registry/allocate.ts';
import { claimVm } from '../registry/claim-vm.ts';
import { nullIfNotFound } from '../registry/errors.ts';
import { getHost } from '../registry/hosts.ts';
import {
  commitMigration,
  releaseMigrationTarget,
  reserveMigrationTarget,
} from '../registry/vm-migration.ts';
import { claimVolumes, recordedVolumes } from '../registry/vm-volumes.ts';
import {
  deleteVm,
  getVmAndHost,
  getVmById,
  releaseAllocation,
  transitionVm,
  type VmAndHost,
} from '../registry/vms.ts';
import { stepPosition } from './run-position.ts';
import { heartbeating, spec, vmStepHelpers, type VmActivityDeps } from './vm-helpers.ts';
import { vmImageSteps } from './vm-image.ts';

/**
 * The step migrateDomain heartbeats once the target's volumes are there; the drivers' own
 * migration steps start with it too (`migrate live`, `migrate cold: ...`).
 */
const MOVING = 'migrate';

/**
 * The VM entity workflow's steps through its life: claim, place, define, start, stop, move,
 * retire. One side effect each, safe to retry; making and wiping its volumes is in
 * vm-disks.ts.
 */
export function createVmActivities(deps: VmActivityDeps) {
  const { sql, drivers, defaultPolicy, actor } = deps;
  const { onHost, transition, withStates, claimVolumesOnHost } = vmStepHelpers(deps);
  const { imageOnHost, seedOf } = vmImageSteps(sql, deps.imageStore);

  /**
   * Starts the domain; true if the host reports it running at once (most do), and only then
   * is `done` recorded: otherwise the workflow waits for it (waitRunning) and records it.
   */
  function startDomain(vmId: string, states?: StepStates): Promise<boolean> {
    return withStates(
      vmId,
      states,
      async (read) => {
        const { vm, driver } = await onHost(vmId, undefined, read);
        return (await driver.start(vm.name)) === 'running';
      },
      () => true,
      (running) => running,
    );
  }

  /**
   * Undefines the VM's domain on its host, if placed; answers how many volumes it has left to
   * wipe, on any host (a VM the monitor took off a host that lost it keeps its volumes there).
   */
  async function undefineOnHost({ vm, host }: VmAndHost): Promise<number> {
    if (host) await drivers.get(host).undefine({ id: vm.id, name: vm.name });
    return recordedVolumes(vm.keys).length;
  }

  return {
    async claimVm(request: VmRequest, operation: OperationRef): Promise<Vm> {
      return claimVm(sql, request, operation, actor());
    },

    async transitionVm(
      vmId: string,
      from: VmState[] | 'any',
      to: VmState,
      patch: { operation?: OperationRef; error?: string | null } = {},
    ): Promise<void> {
      await transitionVm(sql, vmId, from, to, { ...patch, at: stepPosition() }, actor());
    },

    /** Enters `placing` (if asked) and places the VM: its host. */
    async placeVm(vm: Pick<Vm, 'id' | 'definition'>, enter?: Transition): Promise<string> {
      if (enter) await transition(vm.id, enter);
      return (await placeVm(sql, vm, defaultPolicy, actor())).host;
    },

    /**
     * The create's allocation as one step: enters `placing` (if asked), places the VM (room on
     * a host), then claims the `vol:` keys of the volumes provision will create there, before
     * anything exists. Answers the host and those volumes (none for a VM without disks, whose
     * host is then not asked). Idempotent: a placed VM stays put and its keys are claimed
     * again without complaint.
     */
    async allocateVm(
      vm: Pick<Vm, 'id' | 'definition'>,
      enter?: Transition,
    ): Promise<{ host: string; volumes: VolumeRef[] }> {
      if (enter) await transition(vm.id, enter);
      const { host } = await placeVm(sql, vm, defaultPolicy, actor());
      const volumes = wantsStorage(vm.definition) ? await claimVolumesOnHost(vm.id) : [];
      return { host, volumes };
    },

    /**
     * Defines the domain on its host; then, with `boot`, starts it as startDomain does: the
     * create's define and boot in one step. Answers whether the host reports it running (never,
     * without `boot`). A retry after the start failed defines again (vagoth's own domain is
     * kept) and starts again.
     */
    async defineDomain(vmId: string, states?: StepStates, boot?: StepStates): Promise<boolean> {
      await withStates(
        vmId,
        states,
        async (read) => {
          const { vm, driver, volumes } = await onHost(vmId, undefined, read);
          await driver.define(spec(vm, volumes));
        },
        () => undefined,
      );
      return boot ? startDomain(vmId, boot) : false;
    },

    startDomain,

    /** Polls until the host reports the domain running; resumes its backoff from the heartbeat. */
    async waitRunning(vmId: string): Promise<void> {
      const { vm, driver } = await onHost(vmId);
      const from = (activityInfo().heartbeatDetails as number | undefined) ?? 0;
      for (let attempt = from; ; attempt++) {
        const info = await driver.info(vm.name);
        if (!info) throw new DriverError('not-found', `${vm.name} vanished from ${vm.host}`);
        if (info.state === 'running') return;
        heartbeat(attempt);
        await sleep(Math.min(250 * 2 ** attempt, 5000));
      }
    },

    async stopDomain(vmId: string, states?: StepStates): Promise<void> {
      await withStates(
        vmId,
        states,
        async (read) => {
          const { vm, host } = read ?? (await getVmAndHost(sql, vmId));
          if (!host) return; // never placed: nothing runs
          await drivers.get(host).stop(vm.name);
        },
        () => undefined,
      );
    },

    async shutdownDomain(vmId: string, request: ShutdownRequest): Promise<void> {
      const { vm, driver } = await onHost(vmId);
      await heartbeating(() => driver.shutdown(vm.name, request));
    },

    async rebootDomain(vmId: string): Promise<void> {
      const { vm, driver } = await onHost(vmId);
      await driver.reboot(vm.name);
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
      const found = await transition(vmId, enter).catch(nullIfNotFound);
      if (!found) return 0;
      const volumes = await undefineOnHost(found);
      if (volumes === 0) await deleteVm(sql, vmId, actor());
      return volumes;
    },

    async deleteVm(vmId: string): Promise<void> {
      await deleteVm(sql, vmId, actor());
    },

    /** Holds room on the target (named, or the allocator's pick with the current host excluded). */
    async reserveMigration(vmId: string, target: string | undefined): Promise<string> {
      const vm = await getVmById(sql, vmId);
      if (!vm.host) throw new DriverError('rejected', `vm ${vm.name} is on no host`);
      return reserveMigrationTarget(sql, vm, vm.host, target, defaultPolicy, actor());
    },

    async releaseMigration(vmId: string): Promise<void> {
      const vm = await getVmById(sql, vmId);
      await releaseMigrationTarget(sql, vm.name, actor());
    },

    /**
     * Creates the VM's volumes on the target (fresh and sparse; those on shared storage are
     * kept), then moves the domain with its disks: live where the driver can (libvirt copies
     * the disks as it goes), cold otherwise (each volume copied and checked by digest before
     * the target starts). The driver's migration is safe to retry from any point and goes on
     * from the copy offset it heartbeated; an attempt after one that had got to the move does
     * not provision the target again.
     */
    async migrateDomain(
      vmId: string,
      target: string,
      live: boolean,
    ): Promise<{ live: boolean; note?: string }> {
      const { vm, driver, volumes } = await onHost(vmId);
      const to = await getHost(sql, target);
      const targetDriver = drivers.get(to);
      // The target's overlays need the image there first (copied once per host, as a create's).
      if (!driver.migrateMovesStorage) await imageOnHost(vm, to.name, targetDriver);
      return heartbeating(async ({ resumeFrom, ...progress }) => {
        const moving = resumeFrom?.step.startsWith(MOVING) ?? false;
        if (!moving) {
          // On record on the target before anything is made there, so a move that fails
          // leaves nothing there that vagoth forgets (discardMoveTarget wipes it).
          if (volumes.length > 0) await claimVolumes(sql, vmId, to.name, volumes, actor());
          // A driver whose migrate brings the storage along wants nothing there before it.
          if (!driver.migrateMovesStorage) {
            // Its seed is written there as on the source: a live move copies no read-only disk.
            const seed = await seedOf(vm);
            await targetDriver.provision(spec(vm, volumes), {
              ...progress,
              ...(resumeFrom ? { resumeFrom } : {}),
              ...(seed ? { seed } : {}),
            });
          }
          progress.onProgress?.({ step: MOVING, done: 0, total: 1 });
        }
        return driver.migrate(spec(vm, volumes), to, {
          live,
          ...progress,
          ...(moving && resumeFrom ? { resumeFrom } : {}),
        });
      });
    },

    /** Moves the VM's allocation to the target and releases the source's room. */
    async commitMigration(vmId: string): Promise<void> {
      const vm = await getVmById(sql, vmId);
      await commitMigration(sql, vm, actor());
    },

    async releaseAllocation(vmId: string): Promise<void> {
      await releaseAllocation(sql, vmId, actor());
    },
  };
}
