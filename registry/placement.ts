import type { HostView, PlacementRequest, PlacementSnapshot } from '../allocator/place.ts';
import { actorSource, type ActorOptions } from './context.ts';
import type { Queryable, Sql } from './db.ts';
import { NotFoundError } from './errors.ts';
import type { HostState } from './types.ts';

interface ViewRow {
  name: string;
  tags: Record<string, string>;
  state: HostState;
  cpu_ratio: string;
  free_vcpus: number;
  free_memory_mib: string;
  free_disk_gib: string;
  anti: string[];
}

function toView(r: ViewRow): HostView {
  return {
    name: r.name,
    state: r.state,
    tags: r.tags,
    cpuRatio: Number(r.cpu_ratio),
    free: {
      vcpus: r.free_vcpus,
      memoryMiB: Number(r.free_memory_mib),
      diskGiB: Number(r.free_disk_gib),
    },
    antiAffinity: r.anti,
  };
}

async function affinityHosts(sql: Queryable, groups: string[]): Promise<Record<string, string>> {
  if (groups.length === 0) return {};
  const rows = await sql<{ group: string; host: string }[]>`
    SELECT DISTINCT ON (g) g AS group, n.name AS host
    FROM allocations a JOIN nodes n ON n.id = a.host_id, unnest(a.affinity) g
    WHERE g = ANY (${groups}::text[]) ORDER BY g, a.claimed_at`;
  return Object.fromEntries(rows.map((r) => [r.group, r.host]));
}

// Group clauses only when the request has groups: most have none, and the planner should
// not have to cost a join it cannot skip.
const viewColumns = (sql: Queryable, anti: string[]) => sql`
  n.name, n.tags, c.state, c.cpu_ratio, c.free_vcpus, c.free_memory_mib, c.free_disk_gib,
  ${
    anti.length === 0
      ? sql`'{}'::text[]`
      : sql`COALESCE((SELECT array_agg(DISTINCT g) FROM allocations a, unnest(a.anti_affinity) g
                      WHERE a.host_id = c.host_id AND g = ANY (${anti}::text[])), '{}')`
  } AS anti`;

/** Every host, for explaining a placement: each one either fits or gets a reason. */
export async function placementSnapshot(
  sql: Sql,
  request: PlacementRequest,
): Promise<PlacementSnapshot> {
  const anti = request.antiAffinity ?? [];
  const rows = await sql<ViewRow[]>`
    SELECT ${viewColumns(sql, anti)} FROM nodes n JOIN host_capacity c ON c.host_id = n.id ORDER BY n.name`;
  return {
    hosts: rows.map(toView),
    affinityHosts: await affinityHosts(sql, request.affinity ?? []),
  };
}

/**
 * The few hosts worth planning on, straight from the free-memory index: those that have the
 * room, in the policy's order. The allocator then applies every rule to them; the claim
 * checks again under lock. Cost grows with `limit`, not with the number of hosts.
 */
export async function placementCandidates(
  sql: Sql,
  request: PlacementRequest,
  limit: number,
): Promise<PlacementSnapshot> {
  const anti = request.antiAffinity ?? [];
  const tags = request.tags ?? {};
  // Index order only (host_capacity_free_idx): the planner re-ranks these few by its weigher.
  const order =
    request.policy === 'pack'
      ? sql`c.free_memory_mib ASC, c.host_id ASC`
      : sql`c.free_memory_mib DESC, c.host_id DESC`;
  // An affinity group that already has VMs decides the host: look there, however full it is.
  const affinity = await affinityHosts(sql, request.affinity ?? []);
  const pinned = [...new Set(Object.values(affinity))];
  const rows = await sql<ViewRow[]>`
    SELECT ${viewColumns(sql, anti)}
    FROM host_capacity c JOIN nodes n ON n.id = c.host_id
    WHERE c.state = 'active' AND c.free_memory_mib >= ${request.memoryMiB}
      AND c.free_vcpus >= ${request.vcpus} AND c.free_disk_gib >= ${request.diskGiB}
      ${Object.keys(tags).length === 0 ? sql`` : sql`AND n.tags @> ${sql.json(tags)}`}
      ${request.host === undefined ? sql`` : sql`AND n.name = ${request.host}`}
      ${pinned.length === 0 ? sql`` : sql`AND n.name = ANY (${pinned}::text[])`}
      ${
        anti.length === 0
          ? sql``
          : sql`AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.host_id = c.host_id
                                AND a.anti_affinity && ${anti}::text[])`
      }
    ORDER BY ${order}
    LIMIT ${limit}`;
  return {
    hosts: rows.map(toView),
    affinityHosts: await affinityHosts(sql, request.affinity ?? []),
  };
}

export interface AllocationRequest {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  antiAffinity: string[];
  affinity: string[];
}

const REFUSED = 'VG001';

/**
 * Claims room on the host for the VM and makes the host its parent, in one transaction. The
 * database re-checks every rule under the host's row lock (allocation_claim in migration 002),
 * so a lost race returns the reason instead of over-committing.
 */
export async function claimAllocation(
  sql: Sql,
  vmId: string,
  hostName: string,
  req: AllocationRequest,
  actor?: ActorOptions,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  // One statement, so one round trip and one commit: the host's row lock (taken by the
  // allocation trigger) is held for as short a time as possible.
  try {
    const rows = await sql<{ id: string }[]>`
      WITH host AS (SELECT id FROM nodes WHERE type = 'host' AND name = ${hostName}),
      claimed AS (
        INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib, anti_affinity, affinity)
        SELECT ${vmId}, host.id, ${req.vcpus}, ${req.memoryMiB}, ${req.diskGiB},
               ${req.antiAffinity}::text[], ${req.affinity}::text[]
        FROM host
        RETURNING host_id)
      UPDATE nodes SET parent_id = claimed.host_id, updated_at = now()
      FROM claimed, ${actorSource(sql, actor)} WHERE nodes.id = ${vmId} AND nodes.type = 'vm'
      RETURNING nodes.id`;
    if (rows.length > 0) return { ok: true };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === REFUSED) return { ok: false, reason: (err as Error).message };
    // 23505: the VM already holds an allocation; 23503: the VM is gone. Told apart below.
    if (code !== '23505' && code !== '23503') throw err;
  }
  // Nothing claimed: no such host or VM, or a retried claim that had already landed.
  const [state] = await sql<{ vm: boolean; on: string | null }[]>`
    SELECT true AS vm, (SELECT n.name FROM allocations a JOIN nodes n ON n.id = a.host_id
                        WHERE a.vm_id = ${vmId}) AS on
    FROM nodes WHERE id = ${vmId} AND type = 'vm'`;
  if (!state) throw new NotFoundError('vm', vmId);
  if (state.on === hostName) return { ok: true };
  return {
    ok: false,
    reason: state.on ? 'VM is already placed elsewhere' : 'host no longer registered',
  };
}
