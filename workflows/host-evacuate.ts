import { rootFailure } from './failure.ts';
import { moveAll, moves, registry, sortOutcomes, type DrainReport } from './host-maintenance.ts';

export interface EvacuationReport extends DrainReport {
  /** `moved`: restarted elsewhere (or defined there, if it was stopped) on fresh volumes.
   * `stayed`: still recorded on the fenced host (no room elsewhere, refused), with why; an
   * evacuation run again once there is room takes them, and only them.
   * `failed`: recorded on another host but not restarted there (its driver failed), with why. */
  /** Local storage does not survive its host: evacuated VMs start from freshly provisioned volumes. */
  note: string;
}

/**
 * Restarts a fenced host's VMs on other hosts, each through its own entity workflow (the
 * `evacuate` Update), never calling the fenced host. The API only asks for it with
 * `fenced: true`; the first step refuses a host that is plainly alive anyway. `key` makes the
 * Update ids unique to this evacuation (see drainHost).
 */
export async function evacuateHost(name: string, key: string): Promise<EvacuationReport> {
  try {
    await registry.checkEvacuable(name);
  } catch (err) {
    throw rootFailure(err); // its type (StateConflict, NotFound) reaches the caller
  }
  const vms = await registry.vmsOnHost(name);
  const outcomes = await moveAll(
    vms,
    () => null, // an evacuation is never stopped half-way: activate is refused while it runs
    (vm) => moves.moveVmOff(vm, name, 'evacuate', key),
  );
  return {
    ...sortOutcomes(name, outcomes),
    note: `volumes on ${name} were not copied: evacuated VMs run on freshly provisioned volumes`,
  };
}
