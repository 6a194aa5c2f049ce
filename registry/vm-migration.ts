import type { PlacementPolicy } from '../allocator/place.ts';
import { placeClaimant, placementRequest } from './allocate.ts';
import { actorSource, withActor, type ActorOptions } from './context.ts';
import { jsonb, type Sql } from './db.ts';
import { InvalidRequestError, NoCapacityError } from './errors.ts';
import type { Vm } from './types.ts';
import { forgetVolumes } from './vm-volumes.ts';

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

  // The VM's own pin names the host it was created on: a move ignores it unless asked again.
  const { host: _pin, ...rules } = placementRequest(vm.definition, defaultPolicy);
  const request = { ...rules, ...(target === undefined ? {} : { host: target }) };
  try {
    return (await placeClaimant(sql, holdRow!.id, request, source, actor)).host;
  } catch (err) {
    if (err instanceof NoCapacityError) await releaseMigrationTarget(sql, vm.name, actor);
    throw err;
  }
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
 * The VM now runs on the target: in one transaction the source's room is released, the hold's
 * room on the target becomes the VM's (the same allocation row, handed over: 010_hold_hands_
 * over_room.sql) and the target becomes its parent. The hold's room was claimed under every
 * rule; a target that entered maintenance or went down since does not undo that promise, as
 * the guest already runs there, so nothing here can be refused by the target's state.
 * Idempotent: once the hold is gone the move is on record.
 */
export async function commitMigration(
  sql: Sql,
  vm: Pick<Vm, 'id' | 'name'>,
  actor?: ActorOptions,
  options: { forgetSourceVolumes?: boolean } = {},
): Promise<string | null> {
  return withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const [held] = await tx<{ id: string; host_id: string; host: string }[]>`
      SELECT n.id, a.host_id, h.name AS host
      FROM nodes n JOIN allocations a ON a.vm_id = n.id JOIN nodes h ON h.id = a.host_id
      WHERE n.name = ${migrationHoldName(vm.name)} AND n.type = 'vm-migration'
      FOR UPDATE OF n`;
    if (!held) return null;
    if (options.forgetSourceVolumes) {
      // An evacuation: the source is fenced and never called again, so what is on its disks
      // is left there, off the record (the monitor reports the VM's leftovers should it
      // come back); the VM starts afresh on the target.
      const [source] = await tx<{ name: string }[]>`
        SELECT h.name FROM nodes v JOIN nodes h ON h.id = v.parent_id WHERE v.id = ${vm.id}`;
      if (source) await forgetVolumes(tx, vm.id, source.name);
    }
    await tx`DELETE FROM allocations WHERE vm_id = ${vm.id}`;
    await tx`UPDATE allocations SET vm_id = ${vm.id} WHERE vm_id = ${held.id}`;
    await tx`DELETE FROM nodes WHERE id = ${held.id}`;
    await tx`UPDATE nodes SET parent_id = ${held.host_id}, updated_at = now() WHERE id = ${vm.id}`;
    return held.host;
  });
}
