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
export function projectEvents(
  sql: postgres.Sql,
  projectId: string,
  page: { limit: number; before?: string | undefined },
): Promise<CloudEvent[]> {
  return eventsWhere(sql, sql`e.project_id = ${projectId}`, page);
}

/**
 * The whole cloud's history, newest first, with the project of each change (null: the cloud's
 * own, such as a cluster registered or a user made); `action` narrows it to one kind.
 */
export async function cloudEvents(
  sql: postgres.Sql,
  page: { limit: number; before?: string | undefined; action?: string | undefined },
): Promise<Array<CloudEvent & { project: string | null }>> {
  return eventsWhere(
    sql,
    page.action === undefined ? sql`true` : sql`e.action = ${page.action}`,
    page,
  );
}

/** What was asked of one instance and by whom, newest first: its create, operations, delete. */
export function instanceEvents(
  sql: postgres.Sql,
  projectId: string,
  instanceId: string,
  limit: number,
): Promise<CloudEvent[]> {
  return eventsWhere(
    sql,
    sql`e.project_id = ${projectId} AND e.detail->>'instance' = ${instanceId}`,
    { limit },
  );
}

async function eventsWhere(
  sql: postgres.Sql,
  where: postgres.PendingQuery<postgres.Row[]>,
  page: { limit: number; before?: string | undefined },
): Promise<Array<CloudEvent & { project: string | null }>> {
  const rows = await sql<
    {
      id: string;
      at: Date;
      user: string | null;
      token_id: string | null;
      project: string | null;
      action: string;
      target: string;
      detail: Record<string, unknown>;
    }[]
  >`
    SELECT e.id::text, e.at, u.name AS user, e.token_id, p.name AS project, e.action, e.target,
           e.detail
    FROM cloud.events e LEFT JOIN cloud.users u ON u.id = e.user_id
    LEFT JOIN cloud.projects p ON p.id = e.project_id
    WHERE ${where}
      ${page.before === undefined ? sql`` : sql`AND e.id < ${page.before}::bigint`}
    ORDER BY e.id DESC LIMIT ${page.limit}`;
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    user: r.user,
    tokenId: r.token_id,
    project: r.project,
    action: r.action,
    target: r.target,
    detail: r.detail,
  }));
}
