import { activityInfo, cancellationSignal, heartbeat } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import { stepPosition } from './run-position.ts';
import type { StepStates, Transition, Vm } from '../common/messages.ts';
import {
  DriverError,
  type DriverPool,
  type Progress,
  type ProgressOptions,
  type VolumeRef,
} from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { ImageStore } from '../images/store.ts';
import type { Sql } from '../registry/db.ts';
import { StateConflictError } from '../registry/errors.ts';
import { claimVolumes, volumesOn } from '../registry/vm-volumes.ts';
import { getVmAndHost, getVmById, transitionVm, type VmAndHost } from '../registry/vms.ts';

// What the VM steps (vm.ts, vm-disks.ts) share: how a step finds the VM and its host's
// driver, moves the VM's registry state around its side effect, and heartbeats its progress.

export interface VmActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  defaultPolicy: PlacementPolicy;
  actor: () => ActorOptions;
  /** Where imported images are, for copying a VM's image to its host. */
  imageStore?: ImageStore;
}

/** Records a step's state change in the registry, as the worker's. */
export function recordTransition(
  sql: Sql,
  vmId: string,
  t: Transition,
  actor: ActorOptions,
): Promise<VmAndHost> {
  return transitionVm(
    sql,
    vmId,
    t.from,
    t.to,
    { operation: t.operation, error: t.error ?? null, at: stepPosition() },
    actor,
  );
}

/** Progress as heartbeated: tagged with the host it is about, where a step spans hosts. */
type HostProgress = Progress & { host?: string };

/** The driver progress an earlier attempt of this activity heartbeated last, if any. */
function lastProgress(): HostProgress | undefined {
  const d = activityInfo().heartbeatDetails as Partial<HostProgress> | null | undefined;
  if (typeof d !== 'object' || d === null) return undefined;
  if (typeof d.step !== 'string' || !Number.isFinite(d.done) || !Number.isFinite(d.total)) {
    return undefined;
  }
  const v = d.volume as Partial<VolumeRef> | undefined;
  const volume =
    v && typeof v.pool === 'string' && typeof v.name === 'string'
      ? { volume: { pool: v.pool, name: v.name } }
      : {};
  const host = typeof d.host === 'string' ? { host: d.host } : {};
  return { step: d.step, done: d.done!, total: d.total!, ...volume, ...host };
}

/**
 * Runs a driver call that reports progress, heartbeating each report so that the activity's
 * heartbeat timeout and the next attempt (and the Temporal UI) can see how far it got; the next
 * attempt hands that progress to the driver as `resumeFrom`, to go on from there. A call that
 * reports nothing for a while still heartbeats, from a timer, the last progress known (the
 * earlier attempt's, until this one reports): a resumed attempt never erases it. With `host`,
 * the reports are tagged with it and only a progress about that host is resumed from: one
 * volume name may be on two hosts, and a wipe resumed on the wrong one would skip bytes.
 */
export async function heartbeating<T>(
  fn: (options: ProgressOptions) => Promise<T>,
  host?: string,
): Promise<T> {
  const earlier = lastProgress();
  const resumeFrom = host === undefined || earlier?.host === host ? earlier : undefined;
  let last: HostProgress | undefined = earlier;
  const timer = setInterval(() => heartbeat(last), 5_000);
  try {
    return await fn({
      onProgress: (p) => {
        last = host === undefined ? p : { ...p, host };
        heartbeat(last);
      },
      signal: cancellationSignal(),
      ...(resumeFrom ? { resumeFrom } : {}),
    });
  } finally {
    clearInterval(timer);
  }
}

/** What the driver defines or provisions for the VM: its definition and its volumes. */
export const spec = (vm: Vm, volumes: VolumeRef[]) => ({
  id: vm.id,
  name: vm.name,
  definition: vm.definition,
  volumes,
});

/** The helpers of the VM steps, bound to their dependencies. */
export function vmStepHelpers({ sql, drivers, actor }: VmActivityDeps) {
  /**
   * The VM and the driver of its host (or of `hostName`, for the far side of a move); `read`
   * is the VM as the step's own state change just returned it (with its own host), read
   * again otherwise.
   */
  async function onHost(vmId: string, hostName?: string, read?: VmAndHost) {
    const known = hostName === undefined ? read : undefined;
    const { vm, host } = known ?? (await getVmAndHost(sql, vmId, hostName));
    if (!host) throw new DriverError('rejected', `vm ${vm.name} is on no host`);
    return { vm, host, driver: drivers.get(host), volumes: volumesOn(vm.keys, host.name, vm.host) };
  }
  const transition = (vmId: string, t: Transition) => recordTransition(sql, vmId, t, actor());

  /**
   * Runs `fn` between the step's `enter` and `done` states (`done` only if `reached` says the
   * step got there), handing it the VM as `enter` left it. A retry of a step whose `done`
   * already landed (its answer lost) finds the VM there and does nothing again: it answers
   * `skipped`.
   */
  async function withStates<T>(
    vmId: string,
    states: StepStates | undefined,
    fn: (read?: VmAndHost) => Promise<T>,
    skipped: () => T | Promise<T>,
    reached: (result: T) => boolean = () => true,
  ): Promise<T> {
    let read: VmAndHost | undefined;
    if (states?.enter) {
      try {
        read = await transition(vmId, states.enter);
      } catch (err) {
        const done = states.done?.to;
        if (
          err instanceof StateConflictError &&
          done &&
          (await getVmById(sql, vmId)).state === done
        )
          return skipped();
        throw err;
      }
    }
    const result = await fn(read);
    if (states?.done && reached(result)) await transition(vmId, states.done);
    return result;
  }
  /** Claims the `vol:` keys of the volumes the VM will have on its host; answers them. */
  async function claimVolumesOnHost(
    vmId: string,
    read?: VmAndHost,
    hostName?: string,
  ): Promise<VolumeRef[]> {
    const { vm, host, driver } = await onHost(vmId, hostName, read);
    const refs = driver.volumesFor(vm);
    if (refs.length > 0) await claimVolumes(sql, vmId, host.name, refs, actor());
    return refs;
  }

  return { onHost, transition, withStates, claimVolumesOnHost };
}
