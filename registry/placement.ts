import {
  driversWith,
  type HostView,
  type PlacementRequest,
  type PlacementSnapshot,
} from '../allocator/place.ts';
import type { ActorOptions } from './context.ts';
import type { Queryable, Sql } from './db.ts';
import { NotFoundError } from './errors.ts';
import type { HostDriver, HostState } from './types.ts';

interface ViewRow {
  name: string;
  tags: Record<string, string>;
  state: HostState;
  driver: HostDriver;
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
    driver: r.driver,
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
  n.name, n.tags, c.state, n.definition->>'driver' AS driver, c.cpu_ratio, c.free_vcpus, c.free_memory_mib, c.free_disk_gib,
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
  const features = request.features ?? [];
  const rows = await sql<ViewRow[]>`
    SELECT ${viewColumns(sql, anti)}
    FROM host_capacity c JOIN nodes n ON n.id = c.host_id
    WHERE c.state = 'active' AND c.free_memory_mib >= ${request.memoryMiB}
      AND c.free_vcpus >= ${request.vcpus} AND c.free_disk_gib >= ${request.diskGiB}
      ${Object.keys(tags).length === 0 ? sql`` : sql`AND n.tags @> ${sql.json(tags)}`}
      ${request.host === undefined ? sql`` : sql`AND n.name = ${request.host}`}
      ${
        features.length === 0
          ? sql``
          : sql`AND n.definition->>'driver' = ANY (${driversWith(features)}::text[])`
      }
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
    affinityHosts: affinity,
  };
}

export interface AllocationRequest {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  antiAffinity: string[];
  affinity: string[];
}

/**
 * Claims room for the VM on the first of `hosts` that takes it and makes that host the VM's
 * parent, in one transaction (place_vm in migration 004). The database re-checks every rule
 * under the host's row lock (allocation_claim in migration 002), so a lost race is a reason,
 * never an over-commit. `reasons` tells why hosts before the chosen one (or all) refused.
 */
export async function claimAllocation(
  sql: Sql,
  vmId: string,
  hosts: string[],
  req: AllocationRequest,
  actor?: ActorOptions,
): Promise<{ host: string | null; reasons: Record<string, string> }> {
  try {
    const [row] = await sql<{ host: string | null; reasons: Record<string, string> }[]>`
      SELECT host, reasons FROM place_vm(
        ${vmId}, ${hosts}::text[], ${req.vcpus}, ${req.memoryMiB}, ${req.diskGiB},
        ${req.antiAffinity}::text[], ${req.affinity}::text[],
        ${actor?.actor ?? null}, ${actor?.operation ?? null})`;
    return row!;
  } catch (err) {
    // 23503: the VM is gone.
    if ((err as { code?: string }).code === '23503') throw new NotFoundError('vm', vmId);
    throw err;
  }
}
