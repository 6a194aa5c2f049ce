import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { DrainOutcome } from '../activities/host.ts';

export interface DrainReport {
  host: string;
  moved: { vm: string; to: string }[];
  /** VMs still on the host, each with why (no room elsewhere, failed, refused): never half-moved. */
  stayed: { vm: string; reason: string }[];
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

/**
 * `host:<name>:maintenance`: takes the host out of placement, then drains it by asking each
 * VM's entity workflow to migrate (so a drain is the same operation an operator would send,
 * serialized with the VM's others). Moves run side by side; the allocator's row locks keep
 * them from over-committing a target. Running it again drains whatever arrived or stayed.
 */
export async function hostMaintenance({ name }: { name: string }): Promise<DrainReport> {
  // First: from here on the allocator refuses the host, so nothing new lands on it mid-drain.
  await registry.setHostState(name, 'maintenance');
  const vms = await registry.vmsOnHost(name);
  const outcomes: DrainOutcome[] = await Promise.all(
    vms.map((vm) => moves.moveVmOff(vm, name, 'migrate')),
  );
  const report: DrainReport = { host: name, moved: [], stayed: [] };
  for (const o of outcomes) {
    if (o.moved) report.moved.push({ vm: o.vm, to: o.to });
    else report.stayed.push({ vm: o.vm, reason: o.reason });
  }
  return report;
}
