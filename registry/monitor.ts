// The monitor's queries: what it polls, the snapshot it reconciles against, and the few
// changes its policies may make. Every change is attributed (actor 'monitor') in the node
// event log by the existing triggers, and every VM change is a compare-and-set against the
// snapshot, so the monitor never overrides an operation that moved the VM since.
import { actorSource, withActor, type ActorOptions } from './context.ts';
import { jsonb, type Sql } from './db.ts';
import { NotFoundError } from './errors.ts';
import type { HostDriver, HostState, JsonObject, VmState } from './types.ts';

/** A host as the monitor polls it. */
export interface MonitorTarget {
  name: string;
  driver: HostDriver;
  uri: string;
  state: HostState;
}

/** The hosts to poll: all, or the ones named (each must exist). */
export async function monitorTargets(sql: Sql, names?: string[]): Promise<MonitorTarget[]> {
  const rows = await sql<
    { name: string; definition: { driver: HostDriver; uri: string }; state: HostState }[]
  >`
    SELECT n.name, n.definition, c.state FROM nodes n JOIN host_capacity c ON c.host_id = n.id
    WHERE n.type = 'host' ${names ? sql`AND n.name IN ${sql(names)}` : sql``}
    ORDER BY n.name`;
  const missing = names?.find((name) => !rows.some((r) => r.name === name));
  if (missing !== undefined) throw new NotFoundError('host', missing);
  return rows.map((r) => ({
    name: r.name,
    driver: r.definition.driver,
    uri: r.definition.uri,
    state: r.state,
  }));
}

/** Every VM with where and in which state the registry has it. */
export async function vmSnapshot(
  sql: Sql,
): Promise<Array<{ id: string; name: string; host: string | null; state: VmState }>> {
  return sql<Array<{ id: string; name: string; host: string | null; state: VmState }>>`
    SELECT v.id, v.name, h.name AS host, v.metadata->>'state' AS state
    FROM nodes v LEFT JOIN nodes h ON h.id = v.parent_id
    WHERE v.type = 'vm' ORDER BY v.name`;
}

export interface PollRecord {
  host: string;
  failures: number;
  /** The monitor marked this host down, so an answer brings it back. */
  downByMonitor: boolean;
}

/** Counts a poll: an answer resets the host's failures, silence adds one. */
export async function recordPoll(
  sql: Sql,
  host: string,
  error: string | null,
): Promise<PollRecord> {
  const answered = error === null;
  const rows = await sql<{ failures: number; down_by_monitor: boolean }[]>`
    INSERT INTO host_polls AS p (host_id, failures, last_polled_at, last_answer_at, last_error)
    SELECT n.id, ${answered ? 0 : 1}, now(), ${answered ? sql`now()` : sql`NULL`}, ${error}
    FROM nodes n WHERE n.type = 'host' AND n.name = ${host}
    ON CONFLICT (host_id) DO UPDATE SET
      failures = ${answered ? sql`0` : sql`p.failures + 1`},
      last_polled_at = now(),
      last_answer_at = ${answered ? sql`now()` : sql`p.last_answer_at`},
      last_error = ${error}
    RETURNING failures, down_by_monitor`.catch((err: unknown) => {
    // The host was removed between the SELECT and the INSERT's foreign key check.
    if ((err as { code?: string }).code === '23503') return [];
    throw err;
  });
  const [row] = rows;
  if (!row) throw new NotFoundError('host', host);
  return { host, failures: row.failures, downByMonitor: row.down_by_monitor };
}

/**
 * Merges the monitor's view into the host's metadata. Unchanged values make no event: the
 * log then shows when a host's figures or reachability really moved, not every poll.
 */
export async function updateHostMetadata(
  sql: Sql,
  host: string,
  patch: JsonObject,
  actor: ActorOptions,
): Promise<void> {
  await sql`
    UPDATE nodes SET metadata = metadata || ${jsonb(sql, patch)}, updated_at = now()
    FROM ${actorSource(sql, actor)}
    WHERE type = 'host' AND name = ${host} AND metadata || ${jsonb(sql, patch)} <> metadata`;
}

/**
 * `active` -> `down`, remembering the monitor did it. A host in maintenance stays there: an
 * operator's choice is never overridden. Returns whether the host went down now.
 */
export async function markHostDown(sql: Sql, host: string, actor: ActorOptions): Promise<boolean> {
  return withActor(sql, actor, async (tx) => {
    const rows = await tx`
      UPDATE host_capacity c SET state = 'down' FROM nodes n
      WHERE n.id = c.host_id AND n.type = 'host' AND n.name = ${host} AND c.state = 'active'
      RETURNING c.host_id`;
    if (rows.length === 0) return false;
    await tx`UPDATE host_polls SET down_by_monitor = true WHERE host_id = ${rows[0]!.host_id as string}`;
    return true;
  });
}

/** `down` -> `active`, only for a host the monitor itself marked down. */
export async function markHostUp(sql: Sql, host: string, actor: ActorOptions): Promise<boolean> {
  return withActor(sql, actor, async (tx) => {
    const rows = await tx`
      UPDATE host_capacity c SET state = 'active' FROM nodes n, host_polls p
      WHERE n.id = c.host_id AND p.host_id = c.host_id AND n.type = 'host' AND n.name = ${host}
        AND c.state = 'down' AND p.down_by_monitor
      RETURNING c.host_id`;
    return rows.length > 0;
  });
}

/**
 * Forgets where a missing VM was: its allocation goes (freeing the host's room) and it is
 * `failed` with the reason, to be placed again. Only while it is still as the snapshot saw it.
 */
export async function unassignVm(
  sql: Sql,
  vm: { id: string; host: string; state: VmState },
  reason: string,
  actor: ActorOptions,
): Promise<boolean> {
  return withActor(sql, actor, async (tx) => {
    const rows = await tx`
      UPDATE nodes v SET parent_id = NULL, updated_at = now(),
        metadata = (v.metadata || ${jsonb(tx, { state: 'failed', error: reason })}) - 'at'
      FROM nodes h
      WHERE v.id = ${vm.id} AND v.type = 'vm' AND v.metadata->>'state' = ${vm.state}
        AND h.id = v.parent_id AND h.name = ${vm.host}
      RETURNING v.id`;
    if (rows.length === 0) return false;
    await tx`DELETE FROM allocations WHERE vm_id = ${vm.id}`;
    return true;
  });
}

/** Records the state the host reports, only from the state the snapshot saw. */
export async function adoptVmState(
  sql: Sql,
  vmId: string,
  from: VmState,
  to: VmState,
  actor: ActorOptions,
): Promise<boolean> {
  const rows = await sql`
    UPDATE nodes SET metadata = (metadata || ${jsonb(sql, { state: to })}) - 'at', updated_at = now()
    FROM ${actorSource(sql, actor)}
    WHERE id = ${vmId} AND type = 'vm' AND metadata->>'state' = ${from}
    RETURNING id`;
  return rows.length > 0;
}

/** Whether the registry knows a VM by this id now (a domain may be younger than the snapshot). */
export async function vmExists(sql: Sql, vmId: string): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM nodes WHERE id = ${vmId} AND type = 'vm'`;
  return rows.length > 0;
}

export async function recordReport(
  sql: Sql,
  report: object,
  operation: string | null,
): Promise<void> {
  await sql`INSERT INTO monitor_reports (operation, report) VALUES (${operation}, ${jsonb(sql, report)})`;
  // The API shows the newest; a few more are kept for whoever looks at the table.
  await sql`
    DELETE FROM monitor_reports
    WHERE id < (SELECT id FROM monitor_reports ORDER BY id DESC OFFSET 99 LIMIT 1)`;
}

export async function lastReport(
  sql: Sql,
): Promise<{ at: string; operation: string | null; report: JsonObject } | null> {
  const [row] = await sql<{ at: Date; operation: string | null; report: JsonObject }[]>`
    SELECT at, operation, report FROM monitor_reports ORDER BY id DESC LIMIT 1`;
  return row ? { at: row.at.toISOString(), operation: row.operation, report: row.report } : null;
}

/**
 * Records the host a misplaced VM really runs on: its room moves there (the allocation
 * trigger checks the host can take it) and its parent follows. Only while the VM is still
 * where and as the snapshot saw it.
 */
export async function adoptVmHost(
  sql: Sql,
  vm: { id: string; host: string | null; state: VmState },
  to: string,
  actor: ActorOptions,
): Promise<boolean> {
  return withActor(sql, actor, async (tx) => {
    const [moved] = await tx<{ target: string }[]>`
      UPDATE nodes v SET parent_id = t.id, metadata = v.metadata - 'at', updated_at = now()
      FROM nodes t
      WHERE v.id = ${vm.id} AND v.type = 'vm' AND v.metadata->>'state' = ${vm.state}
        AND v.parent_id IS NOT DISTINCT FROM
            (SELECT id FROM nodes WHERE type = 'host' AND name = ${vm.host})
        AND t.type = 'host' AND t.name = ${to}
      RETURNING t.id AS target`;
    if (!moved) return false;
    const [old] = await tx`DELETE FROM allocations WHERE vm_id = ${vm.id} RETURNING *`;
    await tx`
      INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib, anti_affinity, affinity)
      SELECT ${vm.id}, ${moved.target}, (d->>'vcpus')::int, (d->>'memoryMiB')::bigint,
             COALESCE((d->>'diskGiB')::bigint, 0)
               + COALESCE((SELECT sum((x->>'sizeGiB')::bigint)
                           FROM jsonb_array_elements(d->'disks') x), 0),
             ${old ? sql.array(old.anti_affinity as string[]) : sql.array([] as string[])},
             ${old ? sql.array(old.affinity as string[]) : sql.array([] as string[])}
      FROM (SELECT definition AS d FROM nodes WHERE id = ${vm.id}) v`;
    return true;
  });
}

/**
 * Every migration hold (with or without room) with its VM as it is now, and room held by any
 * other node that is no VM: one statement, so a hold and its VM's state are read at one moment.
 */
export async function heldRoom(sql: Sql): Promise<
  Array<{
    holder: string;
    type: string;
    host: string | null;
    vm: { name: string; state: VmState } | null;
  }>
> {
  const rows = await sql<
    {
      holder: string;
      type: string;
      host: string | null;
      vm_name: string | null;
      vm_state: VmState | null;
    }[]
  >`
    SELECT n.name AS holder, n.type, h.name AS host, v.name AS vm_name,
      v.metadata->>'state' AS vm_state
    FROM nodes n
    LEFT JOIN allocations a ON a.vm_id = n.id
    LEFT JOIN nodes h ON h.id = a.host_id
    LEFT JOIN nodes v ON v.type = 'vm' AND v.id::text = n.metadata->>'vm'
    WHERE n.type = 'vm-migration'
    UNION ALL
    SELECT n.name, n.type, h.name, NULL, NULL
    FROM allocations a JOIN nodes n ON n.id = a.vm_id JOIN nodes h ON h.id = a.host_id
    WHERE n.type NOT IN ('vm', 'vm-migration')
    ORDER BY holder`;
  return rows.map((r) => ({
    holder: r.holder,
    type: r.type,
    host: r.host,
    vm: r.vm_name !== null && r.vm_state !== null ? { name: r.vm_name, state: r.vm_state } : null,
  }));
}

/**
 * VMs in a state other than `settled` whose record has not changed for `olderThanSeconds`,
 * longest first, at most `limit`: the only ones worth asking their workflow about.
 */
export async function lingeringVms(
  sql: Sql,
  options: { settled: readonly VmState[]; olderThanSeconds: number; limit: number },
): Promise<
  Array<{ id: string; name: string; host: string | null; state: VmState; ageSeconds: number }>
> {
  return sql<
    Array<{ id: string; name: string; host: string | null; state: VmState; ageSeconds: number }>
  >`
    SELECT v.id, v.name, h.name AS host, v.metadata->>'state' AS state,
      floor(extract(epoch FROM now() - v.updated_at))::int AS "ageSeconds"
    FROM nodes v LEFT JOIN nodes h ON h.id = v.parent_id
    WHERE v.type = 'vm'
      AND NOT (v.metadata->>'state' = ANY (${sql.array([...options.settled])}::text[]))
      AND v.updated_at <= now() - make_interval(secs => ${options.olderThanSeconds})
    ORDER BY v.updated_at LIMIT ${options.limit}`;
}
