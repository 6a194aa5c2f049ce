import { claimOrder, planPlacement, type PlacementPolicy } from '../allocator/place.ts';
import { actorSource, withActor, type ActorOptions } from './context.ts';
import { jsonb, type Sql } from './db.ts';
import { InvalidRequestError, NoCapacityError } from './errors.ts';
import { claimAllocation, placementCandidates, placementSnapshot } from './placement.ts';
import type { Vm } from './types.ts';

const CANDIDATES = 16;

/**
 * While a VM moves it needs room on both hosts, and an allocation belongs to one node (its
 * primary key is the VM's id). So the room on the target is held by a hold node of its own,
 * `<vm>:migration` (no user node can take that name: ':' is not in the name alphabet); the
 * same rules and the same row-lock checks as any placement apply to it.
 */
export function migrationHoldName(vmName: string): string {
  return `${vmName}:migration`;
}

/**
 * Claims room for the VM on `target`, or on the host the allocator picks with `source`
 * excluded. Idempotent: a hold already taken answers with its host. Returns the target.
 */
export async function reserveMigrationTarget(
  sql: Sql,
  vm: Pick<Vm, 'id' | 'name' | 'definition'>,
  source: string,
  target: string | undefined,
  defaultPolicy: PlacementPolicy,
  actor?: ActorOptions,
): Promise<string> {
  if (target === source) throw new InvalidRequestError('host', `${source} is where the VM runs`);
  const hold = migrationHoldName(vm.name);
  const [holdRow] = await sql<{ id: string; host: string | null }[]>`
    INSERT INTO nodes AS n (name, type, metadata)
    SELECT ${hold}, 'vm-migration', ${jsonb(sql, { vm: vm.id, from: source })}
    FROM ${actorSource(sql, actor)}
    ON CONFLICT (name) DO UPDATE SET updated_at = n.updated_at
    RETURNING n.id,
      (SELECT h.name FROM allocations a JOIN nodes h ON h.id = a.host_id WHERE a.vm_id = n.id) AS host`;
  if (holdRow!.host) return holdRow!.host;

  const { vcpus, memoryMiB, diskGiB, placement } = vm.definition;
  // The VM's own pin names the host it was created on: a move ignores it unless asked again.
  const { host: _pin, ...rules } = placement;
  const request = {
    vcpus,
    memoryMiB,
    diskGiB,
    ...rules,
    ...(target === undefined ? {} : { host: target }),
    policy: placement.policy ?? defaultPolicy,
  };
  const withoutSource = <T extends { hosts: { name: string }[] }>(s: T): T => ({
    ...s,
    hosts: s.hosts.filter((h) => h.name !== source),
  });
  const plan = planPlacement(
    withoutSource(await placementCandidates(sql, request, CANDIDATES + 1)),
    request,
  );
  const allocation = {
    vcpus,
    memoryMiB,
    diskGiB,
    antiAffinity: placement.antiAffinity ?? [],
    affinity: placement.affinity ?? [],
  };
  const claim = await claimAllocation(
    sql,
    holdRow!.id,
    claimOrder(plan, Math.random),
    allocation,
    actor,
  );
  if (claim.host !== null) return claim.host;
  await releaseMigrationTarget(sql, vm.name, actor);
  const reasons = { ...plan.rejected, ...claim.reasons };
  if (plan.candidates.length === 0) {
    const all = withoutSource(await placementSnapshot(sql, request));
    Object.assign(reasons, planPlacement(all, request).rejected);
  }
  throw new NoCapacityError(reasons);
}

/** Gives the held room back (a move that did not happen); a retry is a no-op. */
export async function releaseMigrationTarget(
  sql: Sql,
  vmName: string,
  actor?: ActorOptions,
): Promise<void> {
  await sql`
    DELETE FROM nodes USING ${actorSource(sql, actor)}
    WHERE name = ${migrationHoldName(vmName)} AND type = 'vm-migration'`;
}

/**
 * The VM now runs on the target: in one transaction its allocation moves there (the hold's
 * room becomes the VM's, the source's room is released) and the target becomes its parent.
 * Idempotent: once the hold is gone the move is on record.
 */
export async function commitMigration(
  sql: Sql,
  vm: Pick<Vm, 'id' | 'name'>,
  actor?: ActorOptions,
): Promise<string | null> {
  return withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const [held] = await tx<
      {
        id: string;
        host_id: string;
        host: string;
        vcpus: number;
        memory_mib: string;
        disk_gib: string;
        anti_affinity: string[];
        affinity: string[];
      }[]
    >`
      SELECT n.id, a.host_id, h.name AS host, a.vcpus, a.memory_mib, a.disk_gib,
        a.anti_affinity, a.affinity
      FROM nodes n JOIN allocations a ON a.vm_id = n.id JOIN nodes h ON h.id = a.host_id
      WHERE n.name = ${migrationHoldName(vm.name)} AND n.type = 'vm-migration'
      FOR UPDATE OF n`;
    if (!held) return null;
    await tx`DELETE FROM nodes WHERE id = ${held.id}`;
    await tx`DELETE FROM allocations WHERE vm_id = ${vm.id}`;
    await tx`
      INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib, anti_affinity, affinity)
      VALUES (${vm.id}, ${held.host_id}, ${held.vcpus}, ${held.memory_mib}, ${held.disk_gib},
              ${held.anti_affinity}::text[], ${held.affinity}::text[])`;
    await tx`UPDATE nodes SET parent_id = ${held.host_id}, updated_at = now() WHERE id = ${vm.id}`;
    return held.host;
  });
}
