import type { Queryable } from './db.ts';
import { LifecycleOwnedError, NotFoundError } from './errors.ts';

/**
 * Node types whose nodes a lifecycle owns: VMs (their workflow), hosts (theirs) and the
 * migration holds a VM's move takes (registry/vm-migration.ts). The generic node functions
 * (nodes.*) leave them alone; 009_lifecycle_nodes.sql holds the same rule in the database.
 */
export const LIFECYCLE_TYPES: readonly string[] = ['vm', 'host', 'vm-migration'];

/** Lifecycle types whose tags are an operator's labels, which nodes.updateTags may change. */
const TAGGABLE: readonly string[] = ['vm', 'host'];

/** Types that are never a parent: a VM or a hold under which a node hangs could never go. */
const NEVER_PARENTS: readonly string[] = ['vm', 'vm-migration'];

export function isLifecycleType(type: string): boolean {
  return LIFECYCLE_TYPES.includes(type);
}

/**
 * Marks the transaction as the generic node functions': the database then refuses any change
 * to a lifecycle node in it (009_lifecycle_nodes.sql), whatever this module missed.
 */
export async function markGeneric(tx: Queryable): Promise<void> {
  await tx`SELECT set_config('vagoth.generic', 'on', true)`;
}

interface Owned {
  id: string;
  name: string;
  type: string;
}

async function typeOf(tx: Queryable, id: string, kind: string): Promise<Owned> {
  // A node's type never changes to or from a lifecycle type, so no lock is needed to trust it.
  const [row] = await tx<Owned[]>`SELECT id, name, type FROM nodes WHERE id = ${id}`;
  if (!row) throw new NotFoundError(kind, id);
  return row;
}

/**
 * The node, once the transaction is marked generic and the node is not a lifecycle's;
 * `wanted` says what the caller meant to do, for the refusal. Tags of VMs and hosts pass.
 */
export async function genericNode(
  tx: Queryable,
  id: string,
  wanted: string,
  options: { tags?: boolean } = {},
): Promise<Owned> {
  await markGeneric(tx);
  const node = await typeOf(tx, id, 'node');
  const allowed = options.tags === true && TAGGABLE.includes(node.type);
  if (isLifecycleType(node.type) && !allowed) {
    throw new LifecycleOwnedError(node.type, node.name, wanted);
  }
  return node;
}

/** The parent-to-be, unless it is a node nothing may hang under (a VM, a migration hold). */
export async function genericParent(tx: Queryable, id: string, child: string): Promise<Owned> {
  const parent = await typeOf(tx, id, 'parent node');
  if (NEVER_PARENTS.includes(parent.type)) {
    throw new LifecycleOwnedError(parent.type, parent.name, `make it the parent of ${child}`);
  }
  return parent;
}
