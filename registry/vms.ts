import type { Recorded, RecordedPosition } from '../common/run-position.ts';
import { actorSource, withActor, type ActorOptions } from './context.ts';
import { jsonb, type Queryable, type Sql } from './db.ts';
import { NotFoundError, StateConflictError } from './errors.ts';
import { capacityChanged } from './housekeeping.ts';
import type {
  GuestConfig,
  HostAddress,
  NicDefinition,
  OperationRef,
  PlacementConstraints,
  Vm,
  VmDefinition,
  VmImage,
  VmState,
} from './types.ts';

export interface VmRequest {
  name: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  nics: Array<{ network: string; ip?: string | undefined; mac?: string | undefined }>;
  tags: Record<string, string>;
  placement: PlacementConstraints;
  image?: VmImage;
  disks?: Array<{ sizeGiB: number }>;
  guest?: GuestConfig;
}

interface VmRow {
  id: string;
  name: string;
  definition: VmDefinition;
  metadata: { state: VmState; operation?: OperationRef; error?: string };
  tags: Record<string, string>;
  host: string | null;
  keys: string[];
  created_at: Date;
}

function toVm(r: VmRow): Vm {
  return {
    id: r.id,
    name: r.name,
    state: r.metadata.state,
    host: r.host,
    definition: r.definition,
    keys: r.keys,
    tags: r.tags,
    operation: r.metadata.operation ?? null,
    error: r.metadata.error ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

// A VM's columns as of its row `v`; its host and keys by subquery, so an UPDATE can return them.
const vmColumns = (sql: Queryable) => sql`
  v.id, v.name, v.definition, v.metadata, v.tags, v.created_at,
  (SELECT h.name FROM nodes h WHERE h.id = v.parent_id) AS host,
  COALESCE((SELECT array_agg(k.key ORDER BY k.key) FROM node_keys k WHERE k.node_id = v.id),
           '{}') AS keys`;

const selectVms = (sql: Queryable) => sql`SELECT ${vmColumns(sql)} FROM nodes v`;

/** How to reach the VM's host (or the host named `hostName`), as column `address`. */
const addressColumn = (sql: Queryable, hostName?: string) => sql`
  (SELECT jsonb_build_object('name', h.name, 'driver', h.definition->'driver',
                             'uri', h.definition->'uri')
   FROM nodes h
   WHERE ${hostName === undefined ? sql`h.id = v.parent_id` : sql`h.type = 'host' AND h.name = ${hostName}`}
  ) AS address`;

/** A VM and how to reach its host: what a step that calls the host needs. */
export interface VmAndHost {
  vm: Vm;
  /** Null for a VM on no host. */
  host: HostAddress | null;
}

type VmAndHostRow = VmRow & { address: HostAddress | null };

const toVmAndHost = (r: VmAndHostRow): VmAndHost => ({ vm: toVm(r), host: r.address });

export async function getVm(sql: Sql, name: string): Promise<Vm> {
  const rows = await sql<VmRow[]>`${selectVms(sql)} WHERE v.type = 'vm' AND v.name = ${name}`;
  if (!rows[0]) throw new NotFoundError('vm', name);
  return toVm(rows[0]);
}

export async function getVmById(sql: Queryable, id: string): Promise<Vm> {
  const rows = await sql<VmRow[]>`${selectVms(sql)} WHERE v.type = 'vm' AND v.id = ${id}`;
  if (!rows[0]) throw new NotFoundError('vm', id);
  return toVm(rows[0]);
}

/** The VM and how to reach its host, or `hostName`'s (the far side of a move), in one read. */
export async function getVmAndHost(
  sql: Queryable,
  id: string,
  hostName?: string,
): Promise<VmAndHost> {
  const rows = await sql<VmAndHostRow[]>`
    SELECT ${vmColumns(sql)}, ${addressColumn(sql, hostName)}
    FROM nodes v WHERE v.type = 'vm' AND v.id = ${id}`;
  if (!rows[0]) throw new NotFoundError('vm', id);
  if (hostName !== undefined && !rows[0].address) throw new NotFoundError('host', hostName);
  return toVmAndHost(rows[0]);
}

/** Every VM by name, or those of `names` the cluster has. */
export async function listVms(sql: Sql, names?: readonly string[]): Promise<Vm[]> {
  const rows = await sql<VmRow[]>`
    ${selectVms(sql)} WHERE v.type = 'vm'
    ${names === undefined ? sql`` : sql`AND v.name IN ${sql(names as string[])}`}
    ORDER BY v.name`;
  return rows.map(toVm);
}

export function nicKeys(nics: NicDefinition[]): string[] {
  return nics.flatMap((n) => [...(n.ip ? [`ip:${n.ip}`] : []), `mac:${n.mac.toLowerCase()}`]);
}

export async function holderOf(sql: Queryable, key: string): Promise<string> {
  const rows = await sql<{ name: string; type: string }[]>`
    SELECT n.name, n.type FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE k.key = ${key}`;
  return rows[0] ? `${rows[0].type} ${rows[0].name}` : 'another node';
}

/**
 * Moves the VM to `to` only from one of `from` (compare-and-set), so two operations
 * racing on one VM cannot both proceed; `any` is for teardown, which must win over anything.
 * `at`: the position of the workflow step that made the change (common/run-position.ts).
 */
export async function transitionVm(
  sql: Sql,
  id: string,
  from: readonly VmState[] | 'any',
  to: VmState,
  patch: { operation?: OperationRef; error?: string | null; at?: RecordedPosition } = {},
  actor?: ActorOptions,
): Promise<VmAndHost> {
  const rows = await sql<VmAndHostRow[]>`
    UPDATE nodes v SET metadata = metadata || ${jsonb(sql, { ...patch, state: to })}, updated_at = now()
    FROM ${actorSource(sql, actor)}
    WHERE v.id = ${id} AND v.type = 'vm'
      ${from === 'any' ? sql`` : sql`AND v.metadata->>'state' IN ${sql(from as VmState[])}`}
    RETURNING ${vmColumns(sql)}, ${addressColumn(sql)}`;
  if (rows[0]) return toVmAndHost(rows[0]);
  const found = await getVmAndHost(sql, id);
  const { vm } = found;
  if (vm.state === to) return found; // a retried transition that already landed
  // A step of this same operation run again after the operation carried the VM past `to`
  // (local activities since the last workflow task are re-run after a worker crash): it
  // already happened. A VM short of `from`, or off the operation's path (`failed`), is a
  // conflict: answering success there would report a change nobody made.
  const { operation } = patch;
  if (operation && sameOperation(vm.operation, operation) && wentPast(operation.kind, to, vm.state))
    return found;
  throw new StateConflictError(`vm ${vm.name}`, vm.state, to);
}

/** Whether the VM is still recorded, and the position of the step that last changed its state. */
export async function recordedPosition(sql: Queryable, id: string): Promise<Recorded> {
  const rows = await sql<{ at: RecordedPosition | null }[]>`
    SELECT metadata->'at' AS at FROM nodes WHERE id = ${id} AND type = 'vm'`;
  return rows[0] ? { exists: true, at: rows[0].at } : { exists: false };
}

/**
 * The states each operation moves a VM through, in order, as its steps record them
 * (workflows/vm-create.ts, vm-operations.ts): what "went further" means for a step run again.
 * A failed operation's `failed` is on none. Reboot and reprovision begin where they end
 * (`running`): only their end is listed. Migrate and evacuate go from `migrating` back to
 * where they began: nothing is past `migrating`.
 */
const OPERATION_PATHS: Readonly<Record<string, readonly VmState[]>> = {
  create: ['pending', 'placing', 'provisioning', 'defining', 'starting', 'running'],
  start: ['stopped', 'starting', 'running'],
  stop: ['running', 'stopping', 'stopped'],
  shutdown: ['running', 'stopping', 'stopped'],
  reboot: ['rebooting', 'running'],
  reprovision: ['reprovisioning', 'running'],
};

/** Whether `state` comes after `to` on the path of an operation of `kind`. */
export function wentPast(kind: string, to: VmState, state: VmState): boolean {
  const path = OPERATION_PATHS[kind];
  if (!path) return false;
  const at = path.indexOf(to);
  return at >= 0 && path.indexOf(state) > at;
}

function sameOperation(a: OperationRef | null, b: OperationRef): boolean {
  return (
    a !== null &&
    a.workflowId === b.workflowId &&
    a.runId === b.runId &&
    (a.updateId ?? null) === (b.updateId ?? null)
  );
}

/** Removes the VM; its keys go with it (ON DELETE CASCADE), and so does its share of its host. */
export async function deleteVm(sql: Sql, id: string, actor?: ActorOptions): Promise<void> {
  await sql`DELETE FROM nodes USING ${actorSource(sql, actor)} WHERE id = ${id} AND type = 'vm'`;
  capacityChanged(sql);
}

/**
 * Gives back the VM's room on its host and detaches it from the host, keeping the VM (a
 * failed create the caller asked to keep). A retry is a no-op.
 */
export async function releaseAllocation(sql: Sql, id: string, actor?: ActorOptions): Promise<void> {
  await withActor(sql, actor ?? { actor: null, operation: null }, async (tx) => {
    await tx`DELETE FROM allocations WHERE vm_id = ${id}`;
    await tx`UPDATE nodes SET parent_id = NULL, updated_at = now() WHERE id = ${id} AND type = 'vm'`;
  });
  capacityChanged(sql);
}
