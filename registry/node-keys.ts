import { inTransaction } from './context.ts';
import type { Queryable } from './db.ts';
import { KeyConflictError, NotFoundError } from './errors.ts';
import { genericNode } from './node-guard.ts';

interface Holder {
  key: string;
  node_id: string;
  name: string;
  type: string;
}

async function holdersOf(sql: Queryable, keys: readonly string[]): Promise<Holder[]> {
  return sql<Holder[]>`
    SELECT k.key, k.node_id, n.name, n.type
    FROM node_keys k JOIN nodes n ON n.id = k.node_id
    WHERE k.key = ANY(${sql.array([...keys])}::text[])`;
}

function conflict(key: string, holder: Holder | undefined): KeyConflictError {
  return new KeyConflictError(key, holder ? `${holder.type} ${holder.name}` : 'another node');
}

/**
 * Claims every key for the node, or throws KeyConflictError naming the first key (in the
 * order given) that another node holds; the caller's transaction then undoes the others.
 * Keys the node already holds are claimed again without complaint, so a retry succeeds.
 */
export async function claimKeys(
  sql: Queryable,
  nodeId: string,
  keys: readonly string[],
): Promise<void> {
  const wanted = [...new Set(keys)];
  if (wanted.length === 0) return;
  // The primary key of node_keys decides every race; ON CONFLICT keeps the transaction usable.
  const claimed = await sql<{ key: string }[]>`
    INSERT INTO node_keys (key, node_id)
    SELECT key, ${nodeId} FROM unnest(${sql.array(wanted)}::text[]) AS key
    ON CONFLICT (key) DO NOTHING RETURNING key`;
  if (claimed.length === wanted.length) return;
  const got = new Set(claimed.map((r) => r.key));
  const missing = wanted.filter((k) => !got.has(k));
  const holders = new Map((await holdersOf(sql, missing)).map((h) => [h.key, h]));
  for (const key of missing) {
    const holder = holders.get(key);
    if (holder?.node_id !== nodeId) throw conflict(key, holder);
  }
}

export interface KeyChange {
  claim?: readonly string[] | undefined;
  release?: readonly string[] | undefined;
}

/**
 * Releases some keys and claims others in one transaction: a claim that conflicts leaves the
 * releases undone too. Releasing a key nobody holds is a no-op (a retry); releasing another
 * node's key is a KeyConflictError. Returns the keys the node holds afterwards. A VM's or a
 * host's keys are their workflows' to claim and release (LifecycleOwnedError).
 */
export async function changeKeys(
  sql: Queryable,
  nodeId: string,
  change: KeyChange,
): Promise<string[]> {
  return inTransaction(sql, async (tx) => {
    await genericNode(tx, nodeId, 'change its keys');
    // KEY SHARE: the node cannot be deleted meanwhile, yet its metadata stays writable.
    const [held] = await tx`SELECT 1 FROM nodes WHERE id = ${nodeId} FOR KEY SHARE`;
    // Deleted since it was read: its keys would be claimed for nothing (a foreign-key error).
    if (!held) throw new NotFoundError('node', nodeId);
    const release = [...new Set(change.release ?? [])];
    if (release.length > 0) {
      const foreign = (await holdersOf(tx, release)).find((h) => h.node_id !== nodeId);
      if (foreign) throw conflict(foreign.key, foreign);
      await tx`
        DELETE FROM node_keys
        WHERE node_id = ${nodeId} AND key = ANY(${tx.array(release)}::text[])`;
    }
    await claimKeys(tx, nodeId, change.claim ?? []);
    const rows = await tx<{ key: string }[]>`
      SELECT key FROM node_keys WHERE node_id = ${nodeId} ORDER BY key`;
    return rows.map((r) => r.key);
  });
}
