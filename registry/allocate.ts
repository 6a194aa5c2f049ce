import {
  claimOrder,
  planPlacement,
  type PlacementPolicy,
  type PlacementRequest,
  type PlacementSnapshot,
} from '../allocator/place.ts';
import type { ActorOptions } from './context.ts';
import type { Sql } from './db.ts';
import { NoCapacityError } from './errors.ts';
import { capacityChanged } from './housekeeping.ts';
import { claimAllocation, placementCandidates, placementSnapshot } from './placement.ts';
import type { DriverFeature, Vm, VmDefinition } from './types.ts';

// How many hosts the index hands the allocator, all of which the claim may try in its one
// round trip: enough to survive lost races and to pass over hosts other claims hold locked.
const CANDIDATES = 16;

export interface Placed {
  host: string;
  /** Claims lost to concurrent placements before this one won. */
  retries: number;
}

/**
 * What a VM's definition asks of a host, and the policy it is placed by: the one builder, for
 * placing a VM and for explaining where one would go (placement.explain).
 */
export function placementRequest(
  definition: Pick<
    VmDefinition,
    'vcpus' | 'memoryMiB' | 'diskGiB' | 'disks' | 'placement' | 'guest' | 'image' | 'boot'
  >,
  defaultPolicy: PlacementPolicy,
): PlacementRequest {
  const { vcpus, memoryMiB, placement } = definition;
  // The root disk and every extra disk take room on the host.
  const diskGiB = definition.diskGiB + (definition.disks ?? []).reduce((n, d) => n + d.sizeGiB, 0);
  const features = featuresOf(definition);
  return {
    vcpus,
    memoryMiB,
    diskGiB,
    ...placement,
    policy: placement.policy ?? defaultPolicy,
    ...(features.length > 0 ? { features } : {}),
  };
}

/** What a VM needs of its host's driver besides room: what it was to be told, how it boots. */
function featuresOf(definition: Pick<VmDefinition, 'guest' | 'image' | 'boot'>): DriverFeature[] {
  const { guest, image, boot } = definition;
  const features: DriverFeature[] = [];
  if (guest && (guest.sshAuthorizedKeys.length > 0 || guest.userData !== undefined)) {
    features.push('cloud-init seed');
  }
  if (boot || image?.boot) features.push('direct kernel boot');
  return features;
}

/**
 * Plans on the best few hosts from the index (never `exclude`), then claims room for
 * `claimant` (a VM, or a migration's hold) on the first of them that takes it, in one
 * transaction. With no room anywhere it fails with every host's reason. Idempotent: a
 * claimant already placed gets its host back (place_vm answers with it).
 */
export async function placeClaimant(
  sql: Sql,
  claimant: string,
  request: PlacementRequest,
  exclude: string | null,
  actor?: ActorOptions,
): Promise<Placed> {
  const without = (s: PlacementSnapshot): PlacementSnapshot =>
    exclude === null ? s : { ...s, hosts: s.hosts.filter((h) => h.name !== exclude) };
  const limit = exclude === null ? CANDIDATES : CANDIDATES + 1;
  const plan = planPlacement(without(await placementCandidates(sql, request, limit)), request);
  const allocation = {
    vcpus: request.vcpus,
    memoryMiB: request.memoryMiB,
    diskGiB: request.diskGiB,
    antiAffinity: request.antiAffinity ?? [],
    affinity: request.affinity ?? [],
  };
  // Called even with no candidates: a retried placement that already landed gets its host.
  const claim = await claimAllocation(
    sql,
    claimant,
    claimOrder(plan, Math.random),
    allocation,
    actor,
  );
  if (claim.host !== null) {
    capacityChanged(sql);
    return { host: claim.host, retries: Object.keys(claim.reasons).length };
  }
  const reasons = { ...plan.rejected, ...claim.reasons };
  if (plan.candidates.length === 0) {
    // The index found nobody with room, and says nothing of the hosts it skipped: explain
    // over every host, for the real reasons.
    const all = without(await placementSnapshot(sql, request));
    Object.assign(reasons, planPlacement(all, request).rejected);
  }
  throw new NoCapacityError(reasons);
}

/**
 * Places a claimed VM (its definition as claimVm returned it: fixed from then on).
 * Idempotent: a placed VM stays put.
 */
export function placeVm(
  sql: Sql,
  vm: Pick<Vm, 'id' | 'definition'>,
  defaultPolicy: PlacementPolicy,
  actor?: ActorOptions,
): Promise<Placed> {
  return placeClaimant(sql, vm.id, placementRequest(vm.definition, defaultPolicy), null, actor);
}
