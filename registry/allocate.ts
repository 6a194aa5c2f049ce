import { claimOrder, planPlacement, type PlacementPolicy } from '../allocator/place.ts';
import type { ActorOptions } from './context.ts';
import type { Sql } from './db.ts';
import { NoCapacityError } from './errors.ts';
import { claimAllocation, placementCandidates, placementSnapshot } from './placement.ts';
import { getVmById } from './vms.ts';

// How many candidates a placement tries before giving up: each loss means another
// request took the room between the snapshot and the claim.
const PLACEMENT_ATTEMPTS = 5;
// How many hosts the index hands the allocator: enough to survive a few lost races.
const CANDIDATES = 16;

export interface Placed {
  host: string;
  /** Claims lost to concurrent placements before this one won. */
  retries: number;
}

/**
 * Places a claimed VM: plans on the best few hosts from the index, then claims in a
 * transaction; a lost race moves to the next candidate. Idempotent: a placed VM stays put.
 */
export async function placeVm(
  sql: Sql,
  vmId: string,
  defaultPolicy: PlacementPolicy,
  actor?: ActorOptions,
): Promise<Placed> {
  const vm = await getVmById(sql, vmId);
  if (vm.host) return { host: vm.host, retries: 0 };
  const { vcpus, memoryMiB, diskGiB, placement } = vm.definition;
  const request = {
    vcpus,
    memoryMiB,
    diskGiB,
    ...placement,
    policy: placement.policy ?? defaultPolicy,
  };
  const plan = planPlacement(await placementCandidates(sql, request, CANDIDATES), request);
  const reasons = { ...plan.rejected };
  const allocation = {
    vcpus,
    memoryMiB,
    diskGiB,
    antiAffinity: placement.antiAffinity ?? [],
    affinity: placement.affinity ?? [],
  };
  let retries = 0;
  for (const host of claimOrder(plan, Math.random).slice(0, PLACEMENT_ATTEMPTS)) {
    const claim = await claimAllocation(sql, vmId, host, allocation, actor);
    if (claim.ok) return { host, retries };
    reasons[host] = claim.reason;
    retries++;
  }
  if (plan.candidates.length === 0) {
    // The index found nobody with room, and says nothing of the hosts it skipped: explain
    // over every host, for the real reasons.
    Object.assign(reasons, planPlacement(await placementSnapshot(sql, request), request).rejected);
  }
  throw new NoCapacityError(reasons);
}
