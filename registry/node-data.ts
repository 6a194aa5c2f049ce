import { inTransaction } from './context.ts';
import { jsonb, type Queryable } from './db.ts';
import { InvalidRequestError, NotFoundError, StateConflictError } from './errors.ts';
import { genericNode } from './node-guard.ts';
import { getNode } from './nodes.ts';
import type { JsonObject, JsonValue, Node } from './types.ts';

/**
 * The metadata states in which a node's definition is in use somewhere (being placed,
 * defined, started, run or taken down).
 */
export const DEPLOYED_STATES: readonly string[] = [
  'placing',
  'defining',
  'starting',
  'running',
  'decommissioning',
];

/**
 * The rule for "deployed": a node is deployed while its metadata.state is one of
 * DEPLOYED_STATES, or while its parent is a host (it sits on one). Its definition is then
 * fixed: a local manager deploys a definition, and the registry must keep saying what it
 * deployed. Returns why the node is deployed, or null when it is not.
 */
export function deployment(node: Node): string | null {
  const state = node.metadata.state;
  if (typeof state === 'string' && DEPLOYED_STATES.includes(state)) return state;
  if (node.parent?.type === 'host') return `deployed on host ${node.parent.name}`;
  return null;
}

/** Replaces the definition, unless the node is deployed (StateConflictError). */
export async function setDefinition(
  sql: Queryable,
  id: string,
  definition: JsonObject,
): Promise<Node> {
  return inTransaction(sql, async (tx) => {
    await genericNode(tx, id, 'change its definition');
    // The row lock holds state and parent still between the check and the write.
    await tx`SELECT 1 FROM nodes WHERE id = ${id} FOR NO KEY UPDATE`;
    const node = await getNode(tx, { id });
    const deployed = deployment(node);
    if (deployed !== null) {
      throw new StateConflictError(`${node.type} ${node.name}`, deployed, 'change its definition');
    }
    await tx`
      UPDATE nodes SET definition = ${jsonb(tx, definition)}, updated_at = now() WHERE id = ${id}`;
    return getNode(tx, { id });
  });
}

/** A patch: keys set to a value are set, keys set to null are removed. */
export type Patch<V extends JsonValue = JsonValue> = Record<string, V | null>;

function split(patch: Patch): { set: JsonObject; remove: string[] } {
  const set: JsonObject = {};
  const remove: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) remove.push(key);
    else set[key] = value;
  }
  return { set, remove };
}

/**
 * Merges the patch into the metadata in one UPDATE: `||` reads the row as it is when the
 * update gets its lock, so concurrent writers of different keys never lose each other's.
 */
export async function mergeMetadata(sql: Queryable, id: string, patch: Patch): Promise<Node> {
  const { set, remove } = split(patch);
  return inTransaction(sql, async (tx) => {
    await genericNode(tx, id, 'change its metadata');
    await tx`
      UPDATE nodes
      SET metadata = (metadata || ${jsonb(tx, set)}) - ${tx.array(remove)}::text[],
          updated_at = now()
      WHERE id = ${id}`;
    return getNode(tx, { id });
  });
}

/**
 * A node's tags at most: a VM's are read into its workflow, whose state must stay far below
 * Temporal's payload limit. The API's schemas bound each request by the same figures.
 */
export const TAG_LIMITS = { maxKeys: 64, maxBytes: 16 * 1024 } as const;

/**
 * Merges the patch into the tags as mergeMetadata does: one UPDATE, null removes a tag. Each
 * patch is bounded by the API, so the bound here is on what they add up to (checked on the row
 * as the UPDATE locks it); an UPDATE that would pass it changes nothing (InvalidRequestError).
 */
export async function setTags(sql: Queryable, id: string, patch: Patch<string>): Promise<Node> {
  const { set, remove } = split(patch);
  return inTransaction(sql, async (tx) => {
    // A VM's and a host's tags are an operator's labels; a migration hold's are not.
    await genericNode(tx, id, 'change its tags', { tags: true });
    const merged = tx`((tags || ${jsonb(tx, set)}) - ${tx.array(remove)}::text[])`;
    const count = tx`(SELECT count(*) FROM jsonb_object_keys(${merged}))`;
    // jsonb's text puts a space after each ':' and ',' that JSON.stringify does not: 2 a key.
    const rows = await tx`
      UPDATE nodes SET tags = ${merged}, updated_at = now()
      WHERE id = ${id} AND ${count} <= ${TAG_LIMITS.maxKeys}
        AND octet_length(${merged}::text) <= ${TAG_LIMITS.maxBytes} + 2 * ${count}
      RETURNING id`;
    if (rows.length === 0) {
      const exists = await tx`SELECT 1 FROM nodes WHERE id = ${id}`;
      if (exists.length === 0) throw new NotFoundError('node', id);
      throw new InvalidRequestError(
        'patch',
        `the node's tags would pass ${TAG_LIMITS.maxKeys} keys or ${TAG_LIMITS.maxBytes / 1024} KiB as JSON`,
      );
    }
    return getNode(tx, { id });
  });
}
