import { claimOrder, planPlacement, type PlacementPolicy } from '../allocator/place.ts';
import type { ActorOptions } from './context.ts';
import type { Sql } from './db.ts';
import { NoCapacityError } from './errors.ts';
import { claimAllocation, placementCandidates, placementSnapshot } from './placement.ts';
import type { Vm } from './types.ts';

// How many hosts the index hands the allocator, all of which the claim may try in its one
// round trip: enough to survive lost races and to pass over hosts other claims hold locked.
const CANDIDATES = 16;

export interface Placed {
  host: string;
  /** Claims lost to concurrent placements before this one won. */
  retries: number;
}

/**
 * Places a claimed VM (its definition as claimVm returned it: fixed from then on): plans on the
 * best few hosts from the index, then claims on the first of them that takes it, in one
 * transaction. Idempotent: a placed VM stays put (place_vm answers with its host).
 */
export async function placeVm(
  sql: Sql,
  vm: Pick<Vm, 'id' | 'definition'>,
  defaultPolicy: PlacementPolicy,
  actor?: ActorOptions,
): Promise<Placed> {
  const vmId = vm.id;
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
  // Called even with no candidates: a retried placement that already landed gets its host.
  const claim = await claimAllocation(sql, vmId, claimOrder(plan, Math.random), allocation, actor);
  if (claim.host !== null) return { host: claim.host, retries: Object.keys(claim.reasons).length };
  Object.assign(reasons, claim.reasons);
  if (plan.candidates.length === 0) {
    // The index found nobody with room, and says nothing of the hosts it skipped: explain
    // over every host, for the real reasons.
    Object.assign(reasons, planPlacement(await placementSnapshot(sql, request), request).rejected);
  }
  throw new NoCapacityError(reasons);
}
