import { activityInfo, cancellationSignal, heartbeat, sleep } from '@temporalio/activity';
import type { PlacementPolicy } from '../allocator/place.ts';
import {
  DriverError,
  type DriverPool,
  type Progress,
  type ProgressOptions,
  type VolumeRef,
  wantsStorage,
} from '../drivers/index.ts';
import type { ActorOptions } from '../registry/context.ts';
import type { Sql } from '../registry/db.ts';
import { placeVm } from '../registry/allocate.ts';
import { getHost } from '../registry/hosts.ts';
import {
  commitMigration,
  releaseMigrationTarget,
  reserveMigrationTarget,
} from '../registry/vm-migration.ts';
import {
  claimVolumes,
  hostsWithVolumes,
  releaseVolumes,
  volumesOn,
} from '../registry/vm-volumes.ts';
import { StateConflictError } from '../registry/errors.ts';
import {
  getVmAndHost,
  getVmById,
  releaseAllocation,
  transitionVm,
  type VmAndHost,
} from '../registry/vms.ts';
import type { OperationRef, Vm, VmState } from '../registry/types.ts';

export interface VmActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  defaultPolicy: PlacementPolicy;
  actor: () => ActorOptions;
}

/** A change of the VM's registry state, compare-and-set from `from` (as transitionVm). */
export interface Transition {
  from: VmState[] | 'any';
  to: VmState;
  operation: OperationRef;
  error?: string | null;
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
    { operation: t.operation, error: t.error ?? null },
    actor,
  );
}

/**
 * The registry states a step moves the VM through: `enter` before its side effect, `done`
 * after it. Made inside the step, they cost the workflow no step of their own.
 */
export interface StepStates {
  enter?: Transition;
  done?: Transition;
}

export interface ShutdownRequest {
  timeoutMs: number;
  force: boolean;
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
async function heartbeating<T>(
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

/**
 * The step migrateDomain heartbeats once the target's volumes are there; the drivers' own
 * migration steps start with it too (`migrate live`, `migrate cold: ...`).
 */
const MOVING = 'migrate';

/** Activities of the VM entity workflow: one side effect each, safe to retry. */
export function createVmActivities({ sql, drivers, defaultPolicy, actor }: VmActivityDeps) {
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

  /**
   * Undefines the VM's domain on `hostName` (or its own host) and wipes the volumes recorded
   * there; `movedAway` keeps those in shared pools (the VM's disks wherever it runs). Then,
   * on a host that is not the VM's own, those volumes are off the record.
   */
  async function wipeOn(vmId: string, hostName?: string, movedAway = false): Promise<void> {
    const { vm, host, driver, volumes } = await onHost(vmId, hostName);
    await heartbeating(
      (progress) =>
        driver.deprovision(
          { id: vm.id, name: vm.name, volumes },
          movedAway ? { ...progress, movedAway } : progress,
        ),
      host.name,
    );
    if (host.name !== vm.host) await releaseVolumes(sql, vmId, actor(), host.name);
  }
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

  const spec = (vm: Vm, volumes: VolumeRef[]) => ({
    id: vm.id,
    name: vm.name,
    definition: vm.definition,
    volumes,
  });

  return {
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
          const { vm, driver } = await onHost(vmId, hostName, read);
          const volumes = wantsStorage(vm.definition)
            ? await claimVolumesOnHost(vmId, read, hostName)
            : [];
          await heartbeating((progress) => driver.provision(spec(vm, volumes), progress));
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
      if (hostName !== undefined) return wipeOn(vmId, hostName);
      const vm = await getVmById(sql, vmId);
      for (const host of hostsWithVolumes(vm.keys, vm.host)) await wipeOn(vmId, host);
    },

    /**
     * After a move: wipes the VM's volumes left on the host it came from, but those on storage
     * both hosts share (they are its disks where it runs now). Runs only once the move
     * committed, and the driver's move copies each local volume and checks it by digest first.
     */
    async wipeMovedVolumes(vmId: string, hostName: string): Promise<void> {
      await wipeOn(vmId, hostName, true);
    },

    /**
     * After a move that failed: wipes what it left on the target (volumes provisioned, a copy
     * cut short), as after a move, keeping shared pools' volumes; then they are off the
     * record. Never while the VM's domain is on the target (a move that got further than its
     * answer said): then they are its disks, kept on record, and the failure says so.
     */
    async discardMoveTarget(vmId: string, target: string): Promise<void> {
      const { vm, host, driver, volumes } = await onHost(vmId, target);
      if (volumes.length === 0 || host.name === vm.host) return;
      // Another domain of that name (one vagoth did not make) has nothing to do with these.
      if ((await driver.info(vm.name))?.vagothId === vm.id) {
        throw new DriverError(
          'rejected',
          `vm ${vm.name} has a domain on ${target} after the move failed: its volumes there are kept`,
        );
      }
      await wipeOn(vmId, target, true);
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
      return heartbeating(async ({ resumeFrom, ...progress }) => {
        const moving = resumeFrom?.step.startsWith(MOVING) ?? false;
        if (!moving) {
          // On record on the target before anything is made there, so a move that fails
          // leaves nothing there that vagoth forgets (discardMoveTarget wipes it).
          if (volumes.length > 0) await claimVolumes(sql, vmId, to.name, volumes, actor());
          await targetDriver.provision(spec(vm, volumes), {
            ...progress,
            ...(resumeFrom ? { resumeFrom } : {}),
          });
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
