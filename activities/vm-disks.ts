import type { StepStates } from '../common/messages.ts';
import type { Vm } from '../registry/types.ts';
import {
  DriverError,
  type DeprovisionOptions,
  type VolumeRef,
  wantsStorage,
  type WipeRecord,
} from '../drivers/index.ts';
import { recordWipe, type WipeReason } from '../registry/volume-wipes.ts';
import { hostsWithVolumes, releaseVolumes, volumesOn } from '../registry/vm-volumes.ts';
import { getVmById } from '../registry/vms.ts';
import { heartbeating, spec, vmStepHelpers, type VmActivityDeps } from './vm-helpers.ts';
import { vmImageSteps } from './vm-image.ts';

/**
 * The VM steps that claim, make and wipe its volumes (a move's copy is migrateDomain's, in
 * vm.ts): long ones heartbeat their progress, and a retry goes on from it.
 */
export function createVmDiskActivities(deps: VmActivityDeps) {
  const { sql, actor } = deps;
  const { onHost, withStates, claimVolumesOnHost } = vmStepHelpers(deps);
  const { imageOnHost, seedOf } = vmImageSteps(sql, deps.imageStore);

  /** What the driver calls with each wipe on `host`: its record, as `reason`. */
  const recorder = (vm: Vm, host: string, reason: WipeReason) => (record: WipeRecord) =>
    recordWipe(sql, vm, host, reason, record, actor());

  /**
   * Undefines the VM's domain on `hostName` (or its own host) and wipes the volumes recorded
   * there; `movedAway` keeps those in shared pools (the VM's disks wherever it runs), and
   * `onlyStopped` refuses a domain that runs there (DeprovisionOptions). Then, on a host that
   * is not the VM's own, those volumes are off the record. On such a host with none on record
   * (wiped already, or forgotten with the host when it was evacuated) there is nothing to do,
   * and the host is not called: unless `evenIfNone` (a failed move's domain on its target).
   * Each volume's wipe is recorded, as `reason`, before the volume is deleted.
   */
  async function wipeOn(
    vmId: string,
    hostName: string | undefined,
    reason: WipeReason,
    how: Pick<DeprovisionOptions, 'movedAway' | 'onlyStopped'> = {},
    evenIfNone = false,
  ): Promise<void> {
    const { vm, host, driver, volumes } = await onHost(vmId, hostName);
    if (volumes.length === 0 && host.name !== vm.host && !evenIfNone) return;
    const onWiped = recorder(vm, host.name, reason);
    await heartbeating(
      (progress) =>
        driver.deprovision({ id: vm.id, name: vm.name, volumes }, { ...progress, ...how, onWiped }),
      host.name,
    );
    if (host.name !== vm.host) await releaseVolumes(sql, vmId, actor(), host.name);
  }
  return {
    /** Claims the `vol:` keys of the volumes provision will create, before anything exists. */
    async claimVolumes(vmId: string, states?: StepStates): Promise<VolumeRef[]> {
      return withStates(
        vmId,
        states,
        (read) => claimVolumesOnHost(vmId, read),
        async () => {
          const vm = await getVmById(sql, vmId);
          return volumesOn(vm.keys, vm.host, vm.host);
        },
      );
    },

    async releaseVolumes(vmId: string): Promise<void> {
      await releaseVolumes(sql, vmId, actor());
    },

    /**
     * Creates the VM's volumes on its host (entering `states.enter` first, if given), their
     * keys claimed there first if they are not yet (an evacuation's new host); ones already
     * there are kept, so a retry resumes.
     */
    async provisionVolumes(vmId: string, hostName?: string, states?: StepStates): Promise<void> {
      await withStates(
        vmId,
        states,
        async (read) => {
          const { vm, host, driver } = await onHost(vmId, hostName, read);
          const volumes = wantsStorage(vm.definition)
            ? await claimVolumesOnHost(vmId, read, hostName)
            : [];
          // The image on the host first, then the seed, written fresh (from the definition,
          // the same on every host).
          await imageOnHost(vm, host.name, driver);
          const seed = await seedOf(vm);
          const onWiped = recorder(vm, host.name, 'rebuild');
          await heartbeating(
            (progress) =>
              driver.provision(spec(vm, volumes), {
                ...progress,
                onWiped,
                ...(seed ? { seed } : {}),
              }),
            host.name,
          );
        },
        () => undefined,
      );
    },

    /**
     * Undefines the domain and wipes the volumes recorded on `hostName`; without it, on every
     * host the VM has volumes recorded on (those a move or the monitor left behind first, its
     * own host last). Volumes already gone are success, and the wipe under way when an attempt
     * was lost goes on from the offset it heartbeated on that host, only ever on a volume the
     * registry records there for this VM. Volumes wiped on a host not the VM's own go off the
     * record; those on its own host stay recorded, for the caller to provision again or
     * release.
     */
    async deprovisionVolumes(vmId: string, hostName?: string): Promise<void> {
      if (hostName !== undefined) return wipeOn(vmId, hostName, 'deprovision');
      const vm = await getVmById(sql, vmId);
      for (const host of hostsWithVolumes(vm.keys, vm.host)) {
        await wipeOn(vmId, host, 'deprovision');
      }
    },

    /**
     * After a move: wipes the VM's volumes left on the host it came from, but those on storage
     * both hosts share (they are its disks where it runs now). Runs only once the move
     * committed, and the driver's move copies each local volume and checks it by digest first.
     */
    async wipeMovedVolumes(vmId: string, hostName: string): Promise<void> {
      await wipeOn(vmId, hostName, 'moved-away', { movedAway: true });
    },

    /**
     * After a move that failed: wipes what it left on the target (volumes provisioned, a copy
     * cut short, the domain a cold move defined there before it copied), keeping shared pools'
     * volumes; then they are off the record. Only while the source still holds the VM's domain
     * (else the move may have landed after all) and never while the VM's domain runs on the
     * target, checked again as it is undefined: then they are its disks, kept on record, and
     * the failure says so.
     */
    async discardMoveTarget(vmId: string, target: string): Promise<void> {
      const { vm, host, driver, volumes } = await onHost(vmId, target);
      if (host.name === vm.host) return;
      // Another domain of that name (one vagoth did not make) has nothing to do with this VM.
      const there = (await driver.info(vm.name))?.vagothId === vm.id;
      if (volumes.length === 0 && !there) return;
      const source = await onHost(vmId);
      if ((await source.driver.info(vm.name))?.vagothId !== vm.id) {
        throw new DriverError(
          'rejected',
          `vm ${vm.name} is no longer on ${source.host.name} after the move failed: what is on ${target} is kept`,
        );
      }
      await wipeOn(vmId, target, 'failed-move', { movedAway: true, onlyStopped: true }, true);
    },
  };
}
