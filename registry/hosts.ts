import { actorSource, withActor, type ActorOptions } from './context.ts';
import { jsonb, type Sql } from './db.ts';
import { KeyConflictError, NotFoundError, StateConflictError } from './errors.ts';
import { claimKeys } from './node-keys.ts';
import type { Host, HostCapacity, HostDriver, HostState } from './types.ts';

export interface NewHost {
  name: string;
  driver: HostDriver;
  uri: string;
  capacity: HostCapacity;
  diskGiB?: number | undefined;
  cpuRatio?: number | undefined;
  memoryRatio?: number | undefined;
  tags?: Record<string, string> | undefined;
  /** Which hypervisor it is (Driver.hostId): claimed as `hypervisor:<identity>`. */
  identity?: string | undefined;
}

interface HostRow {
  id: string;
  name: string;
  definition: { driver: HostDriver; uri: string };
  tags: Record<string, string>;
  created_at: Date;
  state: HostState;
  vcpus: number;
  memory_mib: string;
  disk_gib: string;
  cpu_ratio: string;
  memory_ratio: string;
  alloc_vcpus: number;
  alloc_memory_mib: string;
  alloc_disk_gib: string;
  free_vcpus: number;
  free_memory_mib: string;
  free_disk_gib: string;
  vm_count: number;
}

const selectHosts = (sql: Sql) => sql`
  SELECT n.id, n.name, n.definition, n.tags, n.created_at, c.state, c.vcpus, c.memory_mib,
    c.disk_gib, c.cpu_ratio, c.memory_ratio, c.alloc_vcpus, c.alloc_memory_mib, c.alloc_disk_gib,
    c.free_vcpus, c.free_memory_mib, c.free_disk_gib,
    (SELECT count(*)::int FROM allocations a WHERE a.host_id = n.id) AS vm_count
  FROM nodes n JOIN host_capacity c ON c.host_id = n.id`;

function toHost(r: HostRow): Host {
  return {
    id: r.id,
    name: r.name,
    driver: r.definition.driver,
    uri: r.definition.uri,
    state: r.state,
    tags: r.tags,
    capacity: { vcpus: r.vcpus, memoryMiB: Number(r.memory_mib), diskGiB: Number(r.disk_gib) },
    ratios: { cpu: Number(r.cpu_ratio), memory: Number(r.memory_ratio) },
    allocated: {
      vcpus: r.alloc_vcpus,
      memoryMiB: Number(r.alloc_memory_mib),
      diskGiB: Number(r.alloc_disk_gib),
    },
    free: {
      vcpus: r.free_vcpus,
      memoryMiB: Number(r.free_memory_mib),
      diskGiB: Number(r.free_disk_gib),
    },
    vms: r.vm_count,
    createdAt: r.created_at.toISOString(),
  };
}

/**
 * Records the host and its capacity together, and claims its hypervisor's key: the same
 * hypervisor under another name is a KeyConflictError naming the host that has it.
 * Registering the same host again (same name, same URI) is not a conflict.
 */
export async function insertHost(sql: Sql, host: NewHost, actor?: ActorOptions): Promise<Host> {
  const keys = host.identity === undefined ? [] : [`hypervisor:${host.identity}`];
  const attempt = () =>
    sql.begin(async (tx) => {
      const definition = { driver: host.driver, uri: host.uri };
      const rows = await tx<{ id: string }[]>`
      INSERT INTO nodes (name, type, definition, tags)
      SELECT ${host.name}, 'host', ${jsonb(tx, definition)}, ${jsonb(tx, host.tags ?? {})}
      FROM ${actorSource(tx, actor)}
      ON CONFLICT (name) DO NOTHING
      RETURNING id`;
      const id = rows[0]?.id;
      if (!id) {
        // Locked, so a removal of that very host cannot slip in before its key is claimed.
        const [holder] = await tx<
          { id: string; type: string; definition: Partial<HostRow['definition']> }[]
        >`SELECT id, type, definition FROM nodes WHERE name = ${host.name} FOR KEY SHARE`;
        // Removed between the insert's conflict and this read: the insert is tried again.
        if (!holder) return false;
        const same = holder.type === 'host' && holder.definition.uri === host.uri;
        if (!same) throw new KeyConflictError(`name:${host.name}`, `${holder.type} ${host.name}`);
        // A host recorded before identities were claimed gets its key on a retry.
        await claimKeys(tx, holder.id, keys);
        return true;
      }
      await claimKeys(tx, id, keys);
      await tx`
      INSERT INTO host_capacity (host_id, vcpus, memory_mib, disk_gib, cpu_ratio, memory_ratio)
      VALUES (${id}, ${host.capacity.vcpus}, ${host.capacity.memoryMiB}, ${host.diskGiB ?? 0},
              ${host.cpuRatio ?? 1}, ${host.memoryRatio ?? 1})`;
      return true;
    });
  // A removal can win that race only once per removal; a few tries outlast any sane churn.
  for (let tries = 1; !(await attempt()); tries++) {
    if (tries >= 5) throw new StateConflictError(`host ${host.name}`, 'being removed', 'register');
  }
  return getHost(sql, host.name);
}

export async function listHosts(sql: Sql): Promise<Host[]> {
  return (await sql<HostRow[]>`${selectHosts(sql)} ORDER BY n.name`).map(toHost);
}

export async function getHost(sql: Sql, name: string): Promise<Host> {
  const [row] = await sql<HostRow[]>`${selectHosts(sql)} WHERE n.name = ${name}`;
  if (!row) throw new NotFoundError('host', name);
  return toHost(row);
}

export async function hostExists(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM nodes WHERE type = 'host' AND name = ${name}`;
  return rows.length > 0;
}

export async function setHostState(sql: Sql, name: string, state: HostState): Promise<void> {
  const rows = await sql`
    UPDATE host_capacity c SET state = ${state} FROM nodes n
    WHERE n.id = c.host_id AND n.name = ${name} RETURNING c.host_id`;
  if (rows.length === 0) throw new NotFoundError('host', name);
}

/** A VM whose room is on a host (migration holds excluded: they belong to a VM elsewhere). */
export interface HostedVm {
  id: string;
  name: string;
}

export async function vmsOnHost(sql: Sql, name: string): Promise<HostedVm[]> {
  return sql<HostedVm[]>`
    SELECT v.id, v.name FROM allocations a
    JOIN nodes v ON v.id = a.vm_id JOIN nodes h ON h.id = a.host_id
    WHERE h.name = ${name} AND h.type = 'host' AND v.type = 'vm'
    ORDER BY v.name`;
}

/**
 * Forgets a host: its node, its capacity row and the monitor's rows for it (both cascade from
 * the node). Refused while anything still holds room on it or hangs under it in the tree: a
 * host is removed once drained, never with VMs on it. The host row is locked first, so a
 * placement racing the removal either lands before (and is counted) or finds no host.
 */
export async function removeHost(sql: Sql, name: string, actor?: ActorOptions): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    const [host] = await tx<{ id: string }[]>`
      SELECT c.host_id AS id FROM host_capacity c JOIN nodes n ON n.id = c.host_id
      WHERE n.name = ${name} AND n.type = 'host' FOR UPDATE OF c`;
    if (!host) throw new NotFoundError('host', name);
    const [held] = await tx<{ allocations: number; children: number; volumes: number }[]>`
      SELECT (SELECT count(*)::int FROM allocations WHERE host_id = ${host.id}) AS allocations,
             (SELECT count(*)::int FROM nodes WHERE parent_id = ${host.id}) AS children,
             (SELECT count(*)::int FROM node_keys k JOIN nodes v ON v.id = k.node_id
              WHERE v.type = 'vm' AND starts_with(k.key, ${`vol:${name}:`})) AS volumes`;
    const remaining = Math.max(held!.allocations, held!.children);
    if (remaining > 0) {
      throw new StateConflictError(
        `host ${name}`,
        `still holding ${remaining} VM(s) or allocation(s)`,
        'remove it; drain it first (hosts maintenance)',
      );
    }
    if (held!.volumes > 0) {
      // Left by a move or by a VM the monitor found missing: wiped when their VMs go.
      throw new StateConflictError(
        `host ${name}`,
        `still holding ${held!.volumes} volume(s) of VMs no longer on it, not yet wiped`,
        'remove it; decommission those VMs first',
      );
    }
    await tx`DELETE FROM nodes WHERE id = ${host.id}`;
  });
}
