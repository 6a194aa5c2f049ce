import { jsonb, type Sql } from './db.ts';
import { KeyConflictError, NotFoundError } from './errors.ts';
import type { Host, HostCapacity, HostState } from './types.ts';

export interface NewHost {
  name: string;
  driver: 'libvirt';
  uri: string;
  capacity: HostCapacity;
}

// Allocation is derived from the VMs whose parent is the host, so it can never drift.
const hostColumns = (sql: Sql) => sql`
  h.id, h.name, h.definition, h.metadata, h.created_at,
  COALESCE(SUM((v.definition->>'vcpus')::int), 0)::int AS alloc_vcpus,
  COALESCE(SUM((v.definition->>'memoryMiB')::int), 0)::int AS alloc_memory,
  COUNT(v.id)::int AS vm_count`;

interface HostRow {
  id: string;
  name: string;
  definition: { driver: 'libvirt'; uri: string };
  metadata: { state?: HostState; capacity: HostCapacity };
  created_at: Date;
  alloc_vcpus: number;
  alloc_memory: number;
  vm_count: number;
}

function toHost(r: HostRow): Host {
  return {
    id: r.id,
    name: r.name,
    driver: r.definition.driver,
    uri: r.definition.uri,
    state: r.metadata.state ?? 'active',
    capacity: r.metadata.capacity,
    allocated: { vcpus: r.alloc_vcpus, memoryMiB: r.alloc_memory },
    vms: r.vm_count,
    createdAt: r.created_at.toISOString(),
  };
}

export async function insertHost(sql: Sql, host: NewHost): Promise<Host> {
  const definition = { driver: host.driver, uri: host.uri };
  const metadata = { state: 'active', capacity: host.capacity };
  const rows = await sql<{ id: string }[]>`
    INSERT INTO nodes (name, type, definition, metadata)
    VALUES (${host.name}, 'host', ${jsonb(sql, definition)}, ${jsonb(sql, metadata)})
    ON CONFLICT (name) DO NOTHING
    RETURNING id`;
  if (rows.length === 0) {
    const [holder] = await sql<{ type: string; definition: Partial<HostRow['definition']> }[]>`
      SELECT type, definition FROM nodes WHERE name = ${host.name}`;
    // Registering the same host again (a retried request) is not a conflict.
    const same = holder?.type === 'host' && holder.definition.uri === host.uri;
    if (!same)
      throw new KeyConflictError(`name:${host.name}`, `${holder?.type ?? 'node'} ${host.name}`);
  }
  return getHost(sql, host.name);
}

export async function listHosts(sql: Sql): Promise<Host[]> {
  const rows = await sql<HostRow[]>`
    SELECT ${hostColumns(sql)}
    FROM nodes h LEFT JOIN nodes v ON v.parent_id = h.id AND v.type = 'vm'
    WHERE h.type = 'host'
    GROUP BY h.id ORDER BY h.name`;
  return rows.map(toHost);
}

export async function getHost(sql: Sql, name: string): Promise<Host> {
  const rows = await sql<HostRow[]>`
    SELECT ${hostColumns(sql)}
    FROM nodes h LEFT JOIN nodes v ON v.parent_id = h.id AND v.type = 'vm'
    WHERE h.type = 'host' AND h.name = ${name}
    GROUP BY h.id`;
  const row = rows[0];
  if (!row) throw new NotFoundError('host', name);
  return toHost(row);
}

export async function hostExists(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM nodes WHERE type = 'host' AND name = ${name}`;
  return rows.length > 0;
}

/**
 * Gives the VM to the host if the host still has room, in one transaction: the host's row
 * lock serialises every claim on it, so concurrent placements cannot over-commit it.
 * Returns the reason when it has no room.
 */
export async function claimCapacity(
  sql: Sql,
  vmId: string,
  hostName: string,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  return sql.begin(async (tx) => {
    const hosts = await tx<{ id: string; metadata: HostRow['metadata'] }[]>`
      SELECT id, metadata FROM nodes WHERE type = 'host' AND name = ${hostName} FOR UPDATE`;
    const host = hosts[0];
    if (!host) return { ok: false, reason: 'host no longer registered' } as const;
    if ((host.metadata.state ?? 'active') !== 'active') {
      return { ok: false, reason: `host is ${host.metadata.state}` } as const;
    }
    const [used] = await tx<{ vcpus: number; memory: number }[]>`
      SELECT COALESCE(SUM((definition->>'vcpus')::int), 0)::int AS vcpus,
             COALESCE(SUM((definition->>'memoryMiB')::int), 0)::int AS memory
      FROM nodes WHERE parent_id = ${host.id} AND type = 'vm'`;
    const [vm] = await tx<{ vcpus: number; memory: number; parent_id: string | null }[]>`
      SELECT (definition->>'vcpus')::int AS vcpus, (definition->>'memoryMiB')::int AS memory, parent_id
      FROM nodes WHERE id = ${vmId} AND type = 'vm' FOR UPDATE`;
    if (!vm) throw new NotFoundError('vm', vmId);
    // Idempotent: a retried claim that already landed on this host succeeds again.
    if (vm.parent_id === host.id) return { ok: true } as const;
    if (vm.parent_id !== null)
      return { ok: false, reason: 'VM is already placed elsewhere' } as const;
    const cap = host.metadata.capacity;
    const freeMem = cap.memoryMiB - (used?.memory ?? 0);
    const freeCpu = cap.vcpus - (used?.vcpus ?? 0);
    if (vm.memory > freeMem) {
      return { ok: false, reason: `not enough memory (${freeMem} MiB free)` } as const;
    }
    if (vm.vcpus > freeCpu)
      return { ok: false, reason: `not enough vCPUs (${freeCpu} free)` } as const;
    await tx`UPDATE nodes SET parent_id = ${host.id}, updated_at = now() WHERE id = ${vmId}`;
    return { ok: true } as const;
  });
}
