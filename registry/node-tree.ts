import { inTransaction } from './context.ts';
import type { Queryable } from './db.ts';
import { NotFoundError, ParentAlreadySetError, ParentCycleError } from './errors.ts';
import { genericNode, genericParent } from './node-guard.ts';
import { getNode } from './nodes.ts';
import type { Node } from './types.ts';

// Any constant: serialises parent changes made here, so two of them cannot close a cycle
// together (a under b while b goes under a), each having checked before the other wrote.
const TREE_LOCK = 0x7a90_7402;

/**
 * Gives the node a parent. A parent is never overwritten: a node that has another one must be
 * cleared first (ParentAlreadySetError), so moving a node is two deliberate steps. Setting the
 * parent it already has succeeds again, so a retry is harmless. A VM, a host or a migration
 * hold is never given a parent here, and a VM or a hold is never made one
 * (LifecycleOwnedError): their place in the tree is their lifecycles'.
 */
export async function setParent(sql: Queryable, id: string, parentId: string): Promise<Node> {
  return inTransaction(sql, async (tx) => {
    const child = await genericNode(tx, id, 'change its parent');
    const parent = await genericParent(tx, parentId, label(child));
    await tx`SELECT pg_advisory_xact_lock(${TREE_LOCK})`;
    await tx`SELECT 1 FROM nodes WHERE id = ${id} FOR NO KEY UPDATE`;
    const node = await getNode(tx, { id });
    if (node.parent?.id === parentId) return node;
    if (node.parent) throw new ParentAlreadySetError(label(node), label(node.parent));
    const held = await tx`SELECT 1 FROM nodes WHERE id = ${parentId} FOR KEY SHARE`;
    if (held.length === 0) throw new NotFoundError('parent node', parentId);
    // UNION, not UNION ALL: ends even on a cycle made by some other writer.
    const cycle = await tx`
      WITH RECURSIVE ancestors (id) AS (
        SELECT ${parentId}::uuid
        UNION SELECT n.parent_id FROM nodes n JOIN ancestors a ON n.id = a.id
        WHERE n.parent_id IS NOT NULL)
      SELECT 1 FROM ancestors WHERE id = ${id}`;
    if (cycle.length > 0) throw new ParentCycleError(label(node), label(parent));
    await tx`UPDATE nodes SET parent_id = ${parentId}, updated_at = now() WHERE id = ${id}`;
    return getNode(tx, { id });
  });
}

/** Detaches the node from its parent; a node without one is left as it is. */
export async function clearParent(sql: Queryable, id: string): Promise<Node> {
  return inTransaction(sql, async (tx) => {
    await genericNode(tx, id, 'change its parent');
    await tx`UPDATE nodes SET parent_id = NULL, updated_at = now() WHERE id = ${id}`;
    return getNode(tx, { id });
  });
}

function label(node: { type: string; name: string }): string {
  return `${node.type} ${node.name}`;
}
