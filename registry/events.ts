import type { Queryable } from './db.ts';
import { InvalidCursorError } from './errors.ts';
import { decodeCursor, pageSize, toPage } from './pagination.ts';
import type { NodeAction, NodeEvent, Page } from './types.ts';

interface EventRow {
  id: string;
  node_id: string;
  node_name: string;
  at: Date;
  actor: string | null;
  operation: string | null;
  action: NodeAction;
  changes: NodeEvent['changes'];
}

function toEvent(r: EventRow): NodeEvent {
  return {
    id: r.id,
    nodeId: r.node_id,
    nodeName: r.node_name,
    at: r.at.toISOString(),
    actor: r.actor,
    operation: r.operation,
    action: r.action,
    changes: r.changes,
  };
}

/**
 * A node's history, newest first. It outlives the node: a deleted node's id still lists it.
 * (The triggers of migration 003 write it; nothing here does.)
 */
export async function listEvents(
  sql: Queryable,
  nodeId: string,
  options: { cursor?: string | undefined; limit?: number | undefined } = {},
): Promise<Page<NodeEvent>> {
  const limit = pageSize(options.limit);
  let before = sql``;
  if (options.cursor !== undefined) {
    const [id = ''] = decodeCursor(options.cursor, 1);
    if (!/^\d{1,19}$/.test(id)) throw new InvalidCursorError();
    before = sql`AND id < ${id}::bigint`;
  }
  const rows = await sql<EventRow[]>`
    SELECT id, node_id, node_name, at, actor, operation, action, changes
    FROM node_events WHERE node_id = ${nodeId} ${before}
    ORDER BY id DESC LIMIT ${limit + 1}`;
  const page = toPage(rows, limit, (r) => [r.id]);
  return { items: page.items.map(toEvent), nextCursor: page.nextCursor };
}
