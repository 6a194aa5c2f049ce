/**
 * Pure: which of a cluster's instances the cloud has lost, given the VMs the cluster says it
 * has. An instance whose create the cluster accepted and whose VM it no longer has was lost
 * there (its create failed and was undone, or the VM was removed under the cloud); one never
 * accepted was lost between its record and its create (the cloud stopped, or the cluster's
 * answer never came) once `graceMs` have passed without its VM appearing.
 */
export interface Held {
  vmName: string;
  createdAt: Date;
  acceptedAt: Date | null;
}

export interface Lost<T extends Held> {
  instance: T;
  reason: string;
}

export function lostInstances<T extends Held>(
  held: readonly T[],
  vms: ReadonlySet<string>,
  now: Date,
  graceMs: number,
): Lost<T>[] {
  return held.flatMap((instance) => {
    if (vms.has(instance.vmName)) return [];
    if (instance.acceptedAt !== null) {
      return [{ instance, reason: `its cluster has no VM ${instance.vmName} any more` }];
    }
    if (now.getTime() - instance.createdAt.getTime() >= graceMs) {
      return [
        {
          instance,
          reason: `its cluster never made VM ${instance.vmName} (its create was not taken)`,
        },
      ];
    }
    return [];
  });
}
