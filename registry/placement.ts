import type { HostView, PlacementRequest, PlacementSnapshot } from '../allocator/place.ts';
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

const viewColumns = (sql: Queryable, anti: string[]) => sql`
  n.name, n.tags, c.state, c.cpu_ratio, c.free_vcpus, c.free_memory_mib, c.free_disk_gib,
  COALESCE((SELECT array_agg(DISTINCT g) FROM allocations a, unnest(a.anti_affinity) g
            WHERE a.host_id = c.host_id AND g = ANY (${anti}::text[])), '{}') AS anti`;

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
  const order =
    request.policy === 'pack' ? sql`c.free_memory_mib ASC` : sql`c.free_memory_mib DESC`;
  const rows = await sql<ViewRow[]>`
    SELECT ${viewColumns(sql, anti)}
    FROM host_capacity c JOIN nodes n ON n.id = c.host_id
    WHERE c.state = 'active' AND c.free_memory_mib >= ${request.memoryMiB}
      AND c.free_vcpus >= ${request.vcpus} AND c.free_disk_gib >= ${request.diskGiB}
      AND n.tags @> ${sql.json(tags)}
      ${request.host === undefined ? sql`` : sql`AND n.name = ${request.host}`}
      AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.host_id = c.host_id
                      AND a.anti_affinity && ${anti}::text[])
    ORDER BY ${order}, n.name
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
): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    return await sql.begin(async (tx) => {
      const [host] = await tx<
        { id: string }[]
      >`SELECT id FROM nodes WHERE type = 'host' AND name = ${hostName}`;
      if (!host) return { ok: false, reason: 'host no longer registered' } as const;
      const [vm] = await tx<{ parent_id: string | null }[]>`
        SELECT parent_id FROM nodes WHERE id = ${vmId} AND type = 'vm' FOR UPDATE`;
      if (!vm) throw new NotFoundError('vm', vmId);
      // Idempotent: a retried claim that already landed on this host succeeds again.
      if (vm.parent_id === host.id) return { ok: true } as const;
      if (vm.parent_id !== null)
        return { ok: false, reason: 'VM is already placed elsewhere' } as const;
      await tx`
        INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib, anti_affinity, affinity)
        VALUES (${vmId}, ${host.id}, ${req.vcpus}, ${req.memoryMiB}, ${req.diskGiB},
                ${req.antiAffinity}::text[], ${req.affinity}::text[])`;
      await tx`UPDATE nodes SET parent_id = ${host.id}, updated_at = now() WHERE id = ${vmId}`;
      return { ok: true } as const;
    });
  } catch (err) {
    if ((err as { code?: string }).code === REFUSED)
      return { ok: false, reason: (err as Error).message };
    throw err;
  }
}
