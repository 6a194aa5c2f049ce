// The workflows a chaos test's worker runs: vagoth's own, and one that runs decommission's wipe
// step alone. A real guest cannot boot here (no KVM), so no VM of the test reaches decommission
// through its entity workflow; this one calls the same activity through the same proxy
// (workflows/proxies.ts `wipe`: its timeouts, heartbeat timeout and retries).
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.ts';
import { wipe } from '../../workflows/proxies.ts';

export * from '../../workflows/index.ts';

/** Undefines the VM's domain and wipes and deletes its recorded volumes, as decommission does. */
export async function wipeVolumesOnly(vmId: string): Promise<void> {
  await wipe.deprovisionVolumes(vmId);
}

/**
 * The same step with an attempt bound far shorter than the wipe, as a wipe of a large volume
 * meets `wipe`'s: every attempt runs out of time, and the next goes on from its last heartbeat.
 * Retried without end, as `wipe` is.
 */
const brief = proxyActivities<Activities>({
  startToCloseTimeout: '6 seconds',
  heartbeatTimeout: '3 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 1 },
});

export async function wipeVolumesBriefly(vmId: string): Promise<void> {
  await brief.deprovisionVolumes(vmId);
}
