/**
 * Pure: what the cloud does about a cluster's instances, given the VMs the cluster says it has.
 *
 * - `adopt`: an instance whose create was never taken (no answer came) but whose VM is there:
 *   it was made, and is the project's.
 * - `lost`: an instance whose create was taken and whose VM is gone (its create failed and was
 *   undone, or the VM was removed under the cloud): its share of the quota goes back.
 * - `unsure`: an instance whose create was never taken and whose VM has not appeared in
 *   `graceMs`: lost unless the cluster is still working on it (its VM's workflow running),
 *   which only the cluster can say.
 */
export interface Held {
  vmName: string;
  createdAt: Date;
  acceptedAt: Date | null;
}

export interface ReconcilePlan<T extends Held> {
  adopt: T[];
  lost: Array<{ instance: T; reason: string }>;
  unsure: T[];
}

export function reconcilePlan<T extends Held>(
  held: readonly T[],
  vms: ReadonlySet<string>,
  now: Date,
  graceMs: number,
): ReconcilePlan<T> {
  const plan: ReconcilePlan<T> = { adopt: [], lost: [], unsure: [] };
  for (const instance of held) {
    const there = vms.has(instance.vmName);
    if (instance.acceptedAt === null) {
      if (there) plan.adopt.push(instance);
      else if (now.getTime() - instance.createdAt.getTime() >= graceMs) plan.unsure.push(instance);
    } else if (!there) {
      plan.lost.push({ instance, reason: `its cluster has no VM ${instance.vmName} any more` });
    }
  }
  return plan;
}

/** Why an unsure instance is given back, once its cluster says it is not making its VM. */
export function neverMade(vmName: string): string {
  return `its cluster never made VM ${vmName} (its create was not taken)`;
}
