import type postgres from 'postgres';
import { CloudConflictError, CloudNotFoundError, uniqueViolation } from '../errors.ts';
import { recordEvent, type Actor } from './events.ts';

export interface User {
  id: string;
  name: string;
  admin: boolean;
  createdAt: Date;
  disabledAt: Date | null;
}

interface Row {
  id: string;
  name: string;
  admin: boolean;
  created_at: Date;
  disabled_at: Date | null;
}

const user = (r: Row): User => ({
  id: r.id,
  name: r.name,
  admin: r.admin,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
});

export async function createUser(
  sql: postgres.Sql,
  actor: Actor,
  input: { name: string; admin: boolean },
): Promise<User> {
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<Row[]>`
        INSERT INTO cloud.users (name, admin) VALUES (${input.name}, ${input.admin})
        RETURNING id, name, admin, created_at, disabled_at`;
      await recordEvent(tx, actor, {
        projectId: null,
        action: 'users.create',
        target: input.name,
        detail: { admin: input.admin },
      });
      return user(row!);
    });
  } catch (err) {
    if (uniqueViolation(err)) throw new CloudConflictError(`user ${input.name} exists`);
    throw err;
  }
}

export async function listUsers(sql: postgres.Sql): Promise<User[]> {
  const rows = await sql<Row[]>`
    SELECT id, name, admin, created_at, disabled_at FROM cloud.users ORDER BY name`;
  return rows.map(user);
}

export async function findUser(sql: postgres.Sql, name: string): Promise<User | null> {
  const [row] = await sql<Row[]>`
    SELECT id, name, admin, created_at, disabled_at FROM cloud.users WHERE name = ${name}`;
  return row ? user(row) : null;
}

export async function getUser(sql: postgres.Sql, name: string): Promise<User> {
  const found = await findUser(sql, name);
  if (!found) throw new CloudNotFoundError('user', name);
  return found;
}

/** A disabled user's tokens stop working at once; it stays, as its history names it. */
export async function disableUser(sql: postgres.Sql, actor: Actor, name: string): Promise<User> {
  return sql.begin(async (tx) => {
    const [row] = await tx<Row[]>`
      UPDATE cloud.users SET disabled_at = coalesce(disabled_at, now()) WHERE name = ${name}
      RETURNING id, name, admin, created_at, disabled_at`;
    if (!row) throw new CloudNotFoundError('user', name);
    await recordEvent(tx, actor, { projectId: null, action: 'users.disable', target: name });
    return user(row);
  });
}
