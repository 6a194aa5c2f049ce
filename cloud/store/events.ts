import type postgres from 'postgres';

type Queryable = postgres.Sql | postgres.TransactionSql;

/** Who made a change: the user and the token it called with; null: the cloud's own set-up. */
export interface Actor {
  userId: string | null;
  tokenId: string | null;
}

export interface CloudEvent {
  id: string;
  at: Date;
  user: string | null;
  tokenId: string | null;
  action: string;
  target: string;
  detail: Record<string, unknown>;
}

/** Records a change; called in the change's own transaction, so neither is without the other. */
export async function recordEvent(
  sql: Queryable,
  actor: Actor,
  event: { projectId: string | null; action: string; target: string; detail?: object },
): Promise<void> {
  await sql`
    INSERT INTO cloud.events (user_id, token_id, project_id, action, target, detail)
    VALUES (${actor.userId}, ${actor.tokenId}, ${event.projectId}, ${event.action},
            ${event.target}, ${sql.json((event.detail ?? {}) as postgres.JSONValue)})`;
}

/** A project's history, newest first, a page at a time (`before`: an event id). */
export async function projectEvents(
  sql: postgres.Sql,
  projectId: string,
  page: { limit: number; before?: string | undefined },
): Promise<CloudEvent[]> {
  const rows = await sql<
    {
      id: string;
      at: Date;
      user: string | null;
      token_id: string | null;
      action: string;
      target: string;
      detail: Record<string, unknown>;
    }[]
  >`
    SELECT e.id::text, e.at, u.name AS user, e.token_id, e.action, e.target, e.detail
    FROM cloud.events e LEFT JOIN cloud.users u ON u.id = e.user_id
    WHERE e.project_id = ${projectId}
      ${page.before === undefined ? sql`` : sql`AND e.id < ${page.before}::bigint`}
    ORDER BY e.id DESC LIMIT ${page.limit}`;
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    user: r.user,
    tokenId: r.token_id,
    action: r.action,
    target: r.target,
    detail: r.detail,
  }));
}
