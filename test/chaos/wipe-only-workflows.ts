// The workflows a chaos test's worker runs: vagoth's own, and one that runs decommission's wipe
// step alone. A real guest cannot boot here (no KVM), so no VM of the test reaches decommission
// through its entity workflow; this one calls the same activity through the same proxy
// (workflows/proxies.ts `wipe`: its timeouts, heartbeat timeout and retries).
import { wipe } from '../../workflows/proxies.ts';

export * from '../../workflows/index.ts';

/** Undefines the VM's domain and wipes and deletes its recorded volumes, as decommission does. */
export async function wipeVolumesOnly(vmId: string): Promise<void> {
  await wipe.deprovisionVolumes(vmId);
}
