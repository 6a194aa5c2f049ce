import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from './db.ts';
import { NotFoundError } from './errors.ts';

export const ROLES = ['admin', 'operator', 'reader'] as const;
export type Role = (typeof ROLES)[number];

/** What the registry knows of a token; never its secret. */
export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: Date;
  createdBy: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

// `vgt_` and 43 base64url characters (32 random bytes): recognisable in a log or a leak scan,
// and a string of any other shape is refused without asking the database.
const TOKEN_SHAPE = /^vgt_[A-Za-z0-9_-]{43}$/;

export function isTokenShaped(token: string): boolean {
  return TOKEN_SHAPE.test(token);
}

function newToken(): string {
  return `vgt_${randomBytes(32).toString('base64url')}`;
}

export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

interface Row {
  id: string;
  name: string;
  role: Role;
  created_at: Date;
  created_by: string | null;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const info = (r: Row): TokenInfo => ({
  id: r.id,
  name: r.name,
  role: r.role,
  createdAt: r.created_at,
  createdBy: r.created_by,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export interface CreateTokenOptions {
  name: string;
  role: Role;
  createdBy?: string | null;
  expiresAt?: Date | null;
}

/** Makes a token and answers its secret, the only time anyone sees it. */
export async function createToken(
  sql: Sql,
  options: CreateTokenOptions,
): Promise<TokenInfo & { token: string }> {
  const token = newToken();
  const [row] = await sql<Row[]>`
    INSERT INTO api_tokens (name, role, hash, created_by, expires_at)
    VALUES (${options.name}, ${options.role}, ${tokenHash(token)},
            ${options.createdBy ?? null}, ${options.expiresAt ?? null})
    RETURNING id, name, role, created_at, created_by, expires_at, revoked_at`;
  return { ...info(row!), token };
}

/** The token a secret stands for, revoked or expired ones included; null for none. */
export async function findToken(sql: Sql, token: string): Promise<TokenInfo | null> {
  const [row] = await sql<Row[]>`
    SELECT id, name, role, created_at, created_by, expires_at, revoked_at
    FROM api_tokens WHERE hash = ${tokenHash(token)}`;
  return row ? info(row) : null;
}

export async function listTokens(
  sql: Sql,
  options: { includeRevoked?: boolean } = {},
): Promise<TokenInfo[]> {
  const rows = await sql<Row[]>`
    SELECT id, name, role, created_at, created_by, expires_at, revoked_at
    FROM api_tokens
    WHERE ${options.includeRevoked ?? false} OR revoked_at IS NULL
    ORDER BY created_at, id`;
  return rows.map(info);
}

/** Revokes a token; revoking one already revoked keeps its first revocation time. */
export async function revokeToken(sql: Sql, id: string): Promise<TokenInfo> {
  const [row] = await sql<Row[]>`
    UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id}
    RETURNING id, name, role, created_at, created_by, expires_at, revoked_at`;
  if (!row) throw new NotFoundError('token', id);
  return info(row);
}

// Any constant: serialises API processes that start together on a registry with no admin.
const BOOTSTRAP_LOCK = 0x7a90_7402;

/**
 * The first admin token of a registry that has no usable one (none, or all revoked or
 * expired): made under a lock, so two API processes starting at once make one. Answers the
 * new token's secret, or null when an admin token already exists.
 */
export async function bootstrapAdminToken(sql: Sql): Promise<string | null> {
  const made = await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`;
    const [usable] = await tx`
      SELECT 1 FROM api_tokens
      WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      LIMIT 1`;
    if (usable) return null;
    const token = newToken();
    await tx`
      INSERT INTO api_tokens (name, role, hash) VALUES ('bootstrap-admin', 'admin', ${tokenHash(token)})`;
    return token;
  });
  return made as string | null;
}
