import { createHash, randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import type { Caller, ProjectRole } from '../authorize.ts';
import { CloudNotFoundError, foreignKeyViolation } from '../errors.ts';
import { recordEvent, type Actor } from './events.ts';

/** What the cloud knows of a token; never its secret. */
export interface CloudToken {
  id: string;
  name: string;
  user: string;
  project: string | null;
  readOnly: boolean;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

// `vgc_` and 43 base64url characters (32 random bytes): not a cluster token (`vgt_`), and a
// string of any other shape is refused without asking the database.
const TOKEN_SHAPE = /^vgc_[A-Za-z0-9_-]{43}$/;
const hash = (token: string) => createHash('sha256').update(token).digest();
const newToken = () => `vgc_${randomBytes(32).toString('base64url')}`;

interface Row {
  id: string;
  name: string;
  user: string;
  project: string | null;
  read_only: boolean;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const token = (r: Row): CloudToken => ({
  id: r.id,
  name: r.name,
  user: r.user,
  project: r.project,
  readOnly: r.read_only,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

const SELECT = (sql: postgres.Sql) => sql`
  SELECT t.id, t.name, u.name AS user, p.name AS project, t.read_only, t.created_at,
         t.expires_at, t.revoked_at
  FROM cloud.tokens t JOIN cloud.users u ON u.id = t.user_id
  LEFT JOIN cloud.projects p ON p.id = t.project_id`;

/** Makes a token for a user and answers its secret, the only time anyone sees it. */
export async function createCloudToken(
  sql: postgres.Sql,
  actor: Actor | null,
  input: {
    userId: string;
    name: string;
    projectId: string | null;
    readOnly: boolean;
    expiresAt: Date | null;
  },
): Promise<CloudToken & { token: string }> {
  const secret = newToken();
  const made = sql.begin(async (tx) => {
    const [row] = await tx<{ id: string }[]>`
      INSERT INTO cloud.tokens (user_id, name, hash, project_id, read_only, created_by, expires_at)
      VALUES (${input.userId}, ${input.name}, ${hash(secret)}, ${input.projectId},
              ${input.readOnly}, ${actor?.tokenId ?? null}, ${input.expiresAt})
      RETURNING id`;
    if (actor) {
      await recordEvent(tx, actor, {
        projectId: input.projectId,
        action: 'tokens.create',
        target: input.name,
        detail: { token: row!.id, readOnly: input.readOnly },
      });
    }
    return row!.id;
  });
  const id = await made.catch((err: unknown) => {
    // Its project went meanwhile.
    if (foreignKeyViolation(err)) throw new CloudNotFoundError('project', input.projectId ?? '');
    throw err;
  });
  const [row] = await sql<Row[]>`${SELECT(sql)} WHERE t.id = ${id}`;
  return { ...token(row!), token: secret };
}

/**
 * The caller a token stands for, or null: malformed, unknown, revoked, expired, or its user
 * disabled. One round trip, the user's roles in its projects included.
 */
export async function findCaller(
  sql: postgres.Sql,
  secret: string | undefined,
): Promise<Caller | null> {
  if (secret === undefined || !TOKEN_SHAPE.test(secret)) return null;
  const [row] = await sql<
    {
      token_id: string;
      user_id: string;
      user: string;
      admin: boolean;
      project_id: string | null;
      read_only: boolean;
      expires_at: Date | null;
      roles: Record<string, ProjectRole>;
    }[]
  >`
    SELECT t.id AS token_id, u.id AS user_id, u.name AS user, u.admin, t.project_id, t.read_only,
           t.expires_at,
           coalesce((SELECT jsonb_object_agg(m.project_id, m.role) FROM cloud.members m
                     WHERE m.user_id = u.id), '{}') AS roles
    FROM cloud.tokens t JOIN cloud.users u ON u.id = t.user_id
    WHERE t.hash = ${hash(secret)} AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL`;
  if (!row) return null;
  return {
    userId: row.user_id,
    user: row.user,
    admin: row.admin,
    tokenId: row.token_id,
    project: row.project_id,
    readOnly: row.read_only,
    expiresAt: row.expires_at,
    roles: row.roles,
  };
}

/**
 * A user's tokens, revoked ones included, oldest first; only those narrowed to `project` when
 * one is given (a narrowed caller sees nothing of its user's other projects).
 */
export async function listCloudTokens(
  sql: postgres.Sql,
  userId: string,
  project: string | null,
): Promise<CloudToken[]> {
  const rows = await sql<Row[]>`
    ${SELECT(sql)} WHERE t.user_id = ${userId}
      ${project === null ? sql`` : sql`AND t.project_id = ${project}`}
    ORDER BY t.created_at, t.id`;
  return rows.map(token);
}

/**
 * Revokes a token and every token its user made with it, and with those, down the line: a
 * user's token never outlives the one that made it (an admin's tokens for other users are that
 * user's own, and stay). `owner`: only that user's token (any user's for null);
 * `project`: only one narrowed to that project. A token out of reach is NOT_FOUND.
 */
export async function revokeCloudToken(
  sql: postgres.Sql,
  actor: Actor,
  id: string,
  scope: { owner: string | null; project: string | null },
): Promise<CloudToken> {
  await sql.begin(async (tx) => {
    const [row] = await tx<{ project_id: string | null; name: string }[]>`
      SELECT project_id, name FROM cloud.tokens
      WHERE id = ${id}
        ${scope.owner === null ? tx`` : tx`AND user_id = ${scope.owner}`}
        ${scope.project === null ? tx`` : tx`AND project_id = ${scope.project}`}
      FOR UPDATE`;
    if (!row) throw new CloudNotFoundError('token', id);
    const revoked = await tx<{ id: string }[]>`
      WITH RECURSIVE line AS (
        SELECT id, user_id FROM cloud.tokens WHERE id = ${id}
        UNION
        SELECT t.id, t.user_id FROM cloud.tokens t
        JOIN line ON t.created_by = line.id AND t.user_id = line.user_id
      )
      UPDATE cloud.tokens SET revoked_at = coalesce(revoked_at, now())
      WHERE id IN (SELECT id FROM line) RETURNING id`;
    await recordEvent(tx, actor, {
      projectId: row.project_id,
      action: 'tokens.revoke',
      target: row.name,
      detail: { token: id, withIt: revoked.length - 1 },
    });
  });
  const [row] = await sql<Row[]>`${SELECT(sql)} WHERE t.id = ${id}`;
  return token(row!);
}

// Any constant: serialises cloud processes that start together on a cloud with no admin.
const BOOTSTRAP_LOCK = 0x7a90_7502;

/**
 * The built-in admin user (`admin`) and, when no admin user holds a usable token, a token for
 * it: made under a lock, so two processes starting at once make one, and handed to `keep`
 * (which writes it where the operator finds it) before it is committed, so no token is made
 * that nobody holds. A disabled `admin` stays disabled: no token is made for it. Answers the
 * new token's secret, or null when none was made.
 */
export async function bootstrapCloudAdmin(
  sql: postgres.Sql,
  keep: (secret: string) => Promise<void>,
): Promise<string | null> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`;
    const [usable] = await tx`
      SELECT 1 FROM cloud.tokens t JOIN cloud.users u ON u.id = t.user_id
      WHERE u.admin AND u.disabled_at IS NULL AND t.project_id IS NULL AND NOT t.read_only
        AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
      LIMIT 1`;
    if (usable) return null;
    await tx`INSERT INTO cloud.users (name, admin) VALUES ('admin', true) ON CONFLICT (name) DO NOTHING`;
    const [admin] = await tx<{ id: string }[]>`
      SELECT id FROM cloud.users WHERE name = 'admin' AND admin AND disabled_at IS NULL`;
    if (!admin) return null;
    const secret = newToken();
    const [made] = await tx<{ id: string }[]>`
      INSERT INTO cloud.tokens (user_id, name, hash)
      VALUES (${admin.id}, 'bootstrap-admin', ${hash(secret)}) RETURNING id`;
    await recordEvent(
      tx,
      { userId: null, tokenId: null },
      {
        projectId: null,
        action: 'tokens.bootstrap',
        target: 'bootstrap-admin',
        detail: { token: made!.id },
      },
    );
    await keep(secret);
    return secret;
  }) as Promise<string | null>;
}
