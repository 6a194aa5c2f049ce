import type { DrainOutcome } from '../activities/host.ts';
import { rootFailure } from './failure.ts';
import { moves, registry } from './host-maintenance.ts';

export interface EvacuationReport {
  host: string;
  /** Restarted elsewhere (or defined there, if it was stopped) on fresh volumes. */
  moved: { vm: string; to: string }[];
  /** Still recorded on the fenced host (no room elsewhere, failed, refused), with why. */
  stayed: { vm: string; reason: string }[];
  /** Local storage does not survive its host: evacuated VMs start from freshly provisioned volumes. */
  note: string;
}

/**
 * `host:<name>:evacuate`: restarts a fenced host's VMs on other hosts, each through its own
 * entity workflow (the `evacuate` Update), never calling the fenced host. The API only starts
 * it with `fenced: true`; the first step refuses a host that is plainly alive anyway.
 */
export async function hostEvacuate({ name }: { name: string }): Promise<EvacuationReport> {
  try {
    await registry.checkEvacuable(name);
  } catch (err) {
    throw rootFailure(err); // its type (StateConflict, NotFound) reaches the caller
  }
  const vms = await registry.vmsOnHost(name);
  const outcomes: DrainOutcome[] = await Promise.all(
    vms.map((vm) => moves.moveVmOff(vm, name, 'evacuate')),
  );
  const report: EvacuationReport = {
    host: name,
    moved: [],
    stayed: [],
    note: `volumes on ${name} were not copied: evacuated VMs run on freshly provisioned volumes`,
  };
  for (const o of outcomes) {
    if (o.moved) report.moved.push({ vm: o.vm, to: o.to });
    else report.stayed.push({ vm: o.vm, reason: o.reason });
  }
  return report;
}
