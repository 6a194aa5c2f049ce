import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { DrainOutcome, HostedVm } from '../common/messages.ts';

export interface DrainReport {
  host: string;
  /** `note`: how the move went when the caller should know (asked live, went cold: why). */
  moved: { vm: string; to: string; note?: string }[];
  /** VMs still on the host, each with why (no room elsewhere, failed, refused, the drain was
   * stopped by an activate before their turn): never half-moved. */
  stayed: { vm: string; reason: string }[];
  /** VMs that left the host but did not come up where they went: `failed` on `on`, with why. */
  failed: { vm: string; on: string; reason: string }[];
}

/** Registry steps: quick, retried with backoff. */
export const registry = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 8 },
});

/**
 * Waiting on a VM's migrate: as long as a move of its disks can take. It heartbeats, so a lost
 * worker is noticed in a minute and the retry joins the same Update (its id is fixed per run).
 */
export const moves = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/** Moves a host's VMs side by side; a few at a time, so a stop request has moves left to stop. */
const IN_FLIGHT = 4;

/** How a drain or an evacuation learns it must start no further move, and why. */
export type StopReason = () => string | null;

/**
 * Runs `move` for each VM, at most IN_FLIGHT at once, and starts no new one once `stopped`
 * answers a reason: those not started stay, with it. Moves under way always finish (a VM
 * Update cannot be taken back half-way), so when this returns nothing is moving any more.
 */
export async function moveAll(
  vms: HostedVm[],
  stopped: StopReason,
  move: (vm: HostedVm) => Promise<DrainOutcome>,
): Promise<DrainOutcome[]> {
  const outcomes: DrainOutcome[] = [];
  let next = 0;
  const lane = async () => {
    for (let vm = vms[next]; vm !== undefined; vm = vms[next]) {
      next++;
      const why = stopped();
      outcomes.push(why === null ? await move(vm) : { vm: vm.name, moved: false, reason: why });
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, vms.length) }, lane));
  return outcomes.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0));
}

/** Sorts outcomes into a report's lists. */
export function sortOutcomes(host: string, outcomes: DrainOutcome[]): DrainReport {
  const report: DrainReport = { host, moved: [], stayed: [], failed: [] };
  for (const o of outcomes) {
    if ('gone' in o) continue; // decommissioned meanwhile: no longer the host's
    if (o.moved) report.moved.push({ vm: o.vm, to: o.to, ...(o.note ? { note: o.note } : {}) });
    else if ('failedOn' in o) report.failed.push({ vm: o.vm, on: o.failedOn, reason: o.reason });
    else report.stayed.push({ vm: o.vm, reason: o.reason });
  }
  return report;
}

/**
 * Takes the host out of placement, then drains it by asking each VM's entity workflow to
 * migrate (so a drain is the same operation an operator would send, serialized with the VM's
 * others). The allocator's row locks keep side-by-side moves from over-committing a target.
 * Running it again drains whatever arrived or stayed. `key` makes the moves' Update ids
 * unique to this drain, so a retried move joins its own Update and never a former drain's.
 */
export async function drainHost(name: string, key: string, stopped: StopReason) {
  // A drain stopped before its turn changes nothing: the activate behind it decides the state.
  if (stopped() === null) {
    // First: from here on the allocator refuses the host, so nothing new lands on it mid-drain.
    await registry.setHostState(name, 'maintenance');
  }
  const vms = await registry.vmsOnHost(name);
  const outcomes = await moveAll(vms, stopped, (vm) => moves.moveVmOff(vm, name, 'migrate', key));
  return sortOutcomes(name, outcomes);
}
