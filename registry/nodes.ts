import { inTransaction } from './context.ts';
import { isPgError, jsonb, type Queryable } from './db.ts';
import {
  InvalidCursorError,
  KeyConflictError,
  LifecycleOwnedError,
  NodeInUseError,
  NotFoundError,
} from './errors.ts';
import { genericNode, genericParent, isLifecycleType, markGeneric } from './node-guard.ts';
import { claimKeys } from './node-keys.ts';
import { decodeCursor, pageSize, toPage } from './pagination.ts';
import type { JsonObject, Node, Page } from './types.ts';

interface NodeRow {
  id: string;
  name: string;
  type: string;
  tenant: string | null;
  definition: JsonObject;
  metadata: JsonObject;
  tags: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  parent_id: string | null;
  parent_name: string | null;
  parent_type: string | null;
  keys: string[];
}

function toNode(r: NodeRow): Node {
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    tenant: r.tenant,
    parent:
      r.parent_id !== null && r.parent_name !== null && r.parent_type !== null
        ? { id: r.parent_id, name: r.parent_name, type: r.parent_type }
        : null,
    definition: r.definition,
    metadata: r.metadata,
    tags: r.tags,
    keys: r.keys,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const selectNodes = (sql: Queryable) => sql`
  SELECT n.id, n.name, n.type, n.tenant, n.definition, n.metadata, n.tags, n.created_at,
    n.updated_at, p.id AS parent_id, p.name AS parent_name, p.type AS parent_type,
    COALESCE((SELECT array_agg(k.key ORDER BY k.key) FROM node_keys k WHERE k.node_id = n.id),
             '{}') AS keys
  FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id`;

/** A node by its id, its (current) name, or a unique key it holds (`ip:10.0.0.5`). */
export type NodeLookup = { id: string } | { name: string } | { key: string };

export async function getNode(sql: Queryable, by: NodeLookup): Promise<Node> {
  const rows = await sql<NodeRow[]>`${selectNodes(sql)} WHERE ${matching(sql, by)}`;
  if (!rows[0]) throw notFound(by);
  return toNode(rows[0]);
}

function matching(sql: Queryable, by: NodeLookup) {
  if ('id' in by) return sql`n.id = ${by.id}`;
  if ('name' in by) return sql`n.name = ${by.name}`;
  return sql`n.id = (SELECT node_id FROM node_keys WHERE key = ${by.key})`;
}

function notFound(by: NodeLookup): NotFoundError {
  if ('id' in by) return new NotFoundError('node', by.id);
  if ('name' in by) return new NotFoundError('node', by.name);
  return new NotFoundError('node holding', by.key);
}

export interface NodeFilter {
  type?: string | undefined;
  tenant?: string | undefined;
  /** The parent's id. */
  parent?: string | undefined;
  tag?: { key: string; value: string } | undefined;
  /** A unique key the node holds. */
  key?: string | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

/** Nodes matching every given filter, by name then id: a page, and the cursor to the next. */
export async function findNodes(sql: Queryable, filter: NodeFilter): Promise<Page<Node>> {
  const limit = pageSize(filter.limit);
  const conditions = [
    filter.type !== undefined ? sql`n.type = ${filter.type}` : null,
    filter.tenant !== undefined ? sql`n.tenant = ${filter.tenant}` : null,
    filter.parent !== undefined ? sql`n.parent_id = ${filter.parent}` : null,
    filter.tag !== undefined
      ? sql`n.tags @> ${jsonb(sql, { [filter.tag.key]: filter.tag.value })}`
      : null,
    filter.key !== undefined
      ? sql`n.id = (SELECT node_id FROM node_keys WHERE key = ${filter.key})`
      : null,
    filter.cursor !== undefined ? afterCursor(sql, filter.cursor) : null,
  ].filter((c) => c !== null);
  const where = conditions.reduce((all, c) => sql`${all} AND ${c}`, sql`TRUE`);
  const rows = await sql<NodeRow[]>`
    ${selectNodes(sql)} WHERE ${where} ORDER BY n.name, n.id LIMIT ${limit + 1}`;
  const page = toPage(rows, limit, (r) => [r.name, r.id]);
  return { items: page.items.map(toNode), nextCursor: page.nextCursor };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function afterCursor(sql: Queryable, cursor: string) {
  const [name = '', id = ''] = decodeCursor(cursor, 2);
  // A tampered cursor is the client's mistake (BAD_REQUEST), not a failed uuid cast.
  if (!UUID.test(id)) throw new InvalidCursorError();
  return sql`(n.name, n.id) > (${name}, ${id}::uuid)`;
}

export interface NewNode {
  name: string;
  type: string;
  tenant?: string | null | undefined;
  /** The parent's id. */
  parent?: string | null | undefined;
  definition?: JsonObject | undefined;
  metadata?: JsonObject | undefined;
  tags?: Record<string, string> | undefined;
  /** Unique keys to claim with the node: all of them, or no node at all. */
  keys?: readonly string[] | undefined;
}

/**
 * Records the node and claims its name and every key in one transaction: all or nothing.
 * VMs, hosts and migration holds are their lifecycles' to create (LifecycleOwnedError), and
 * none of them can be the new node's parent but a host.
 */
export async function createNode(sql: Queryable, node: NewNode): Promise<Node> {
  return inTransaction(sql, async (tx) => {
    await markGeneric(tx);
    if (isLifecycleType(node.type)) {
      throw new LifecycleOwnedError(node.type, node.name, 'create it');
    }
    const parent = node.parent ?? null;
    if (parent !== null) {
      await genericParent(tx, parent, `${node.type} ${node.name}`);
      // The parent cannot be deleted before this node is in place under it.
      const held = await tx`SELECT 1 FROM nodes WHERE id = ${parent} FOR KEY SHARE`;
      if (held.length === 0) throw new NotFoundError('parent node', parent);
    }
    // A key set to null means "absent", as in a metadata merge.
    const metadata = Object.fromEntries(
      Object.entries(node.metadata ?? {}).filter(([, v]) => v !== null),
    );
    const inserted = await tx<{ id: string }[]>`
      INSERT INTO nodes (name, type, tenant, parent_id, definition, metadata, tags)
      VALUES (${node.name}, ${node.type}, ${node.tenant ?? null}, ${parent},
              ${jsonb(tx, node.definition ?? {})}, ${jsonb(tx, metadata)},
              ${jsonb(tx, node.tags ?? {})})
      ON CONFLICT (name) DO NOTHING RETURNING id`;
    const id = inserted[0]?.id;
    if (!id) throw new KeyConflictError(`name:${node.name}`, await nameHolder(tx, node.name));
    await claimKeys(tx, id, node.keys ?? []);
    return getNode(tx, { id });
  });
}

async function nameHolder(sql: Queryable, name: string): Promise<string> {
  const rows = await sql<{ type: string }[]>`SELECT type FROM nodes WHERE name = ${name}`;
  return `${rows[0]?.type ?? 'node'} ${name}`;
}

/**
 * Changes the node's name; its id, keys, children and history stay with it. A lifecycle's
 * node keeps its name (LifecycleOwnedError): a VM's and a host's name are their workflows' ids.
 */
export async function renameNode(sql: Queryable, id: string, name: string): Promise<Node> {
  try {
    // In a transaction (or savepoint) of its own, so that after a lost race on the name the
    // caller's transaction is still usable to name the holder.
    await inTransaction(sql, async (tx) => {
      await genericNode(tx, id, 'rename it');
      await tx`UPDATE nodes SET name = ${name}, updated_at = now() WHERE id = ${id}`;
    });
  } catch (err) {
    if (isPgError(err, '23505')) {
      throw new KeyConflictError(`name:${name}`, await nameHolder(sql, name), { cause: err });
    }
    throw err;
  }
  return getNode(sql, { id });
}

/**
 * Removes a node that is part of no tree (no parent, no children): a provisioner detaches it
 * first. Its keys are released with it. Returns the node as it was. VMs, hosts and migration
 * holds go only through their lifecycles (LifecycleOwnedError).
 */
export async function deleteNode(sql: Queryable, id: string): Promise<Node> {
  return inTransaction(sql, async (tx) => {
    await genericNode(tx, id, 'delete it');
    // The row lock keeps a parent from being set, and a child from being attached, meanwhile.
    await tx`SELECT 1 FROM nodes WHERE id = ${id} FOR UPDATE`;
    const node = await getNode(tx, { id });
    const [children] = await tx<{ count: number }[]>`
      SELECT count(*)::int AS count FROM nodes WHERE parent_id = ${id}`;
    const label = `${node.type} ${node.name}`;
    if (node.parent || (children?.count ?? 0) > 0) {
      throw new NodeInUseError(label, node.parent?.name ?? null, children?.count ?? 0);
    }
    await tx`DELETE FROM nodes WHERE id = ${id}`;
    return node;
  });
}
