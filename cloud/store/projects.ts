import type postgres from 'postgres';
import type { ProjectRole } from '../authorize.ts';
import {
  CloudConflictError,
  CloudNotFoundError,
  CloudPreconditionError,
  foreignKeyViolation,
  uniqueViolation,
} from '../errors.ts';
import { instancesIn } from './instances.ts';
import { recordEvent, type Actor } from './events.ts';
import { getUser } from './users.ts';

export interface Project {
  id: string;
  name: string;
  createdAt: Date;
}

export interface Member {
  user: string;
  role: ProjectRole;
  addedAt: Date;
}

export async function createProject(
  sql: postgres.Sql,
  actor: Actor,
  name: string,
): Promise<Project> {
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<{ id: string; name: string; created_at: Date }[]>`
        INSERT INTO cloud.projects (name) VALUES (${name}) RETURNING id, name, created_at`;
      await recordEvent(tx, actor, { projectId: row!.id, action: 'projects.create', target: name });
      return { id: row!.id, name: row!.name, createdAt: row!.created_at };
    });
  } catch (err) {
    if (uniqueViolation(err)) throw new CloudConflictError(`project ${name} exists`);
    throw err;
  }
}

/** A project by name, or null. */
export async function findProject(sql: postgres.Sql, name: string): Promise<Project | null> {
  const [row] = await sql<{ id: string; name: string; created_at: Date }[]>`
    SELECT id, name, created_at FROM cloud.projects WHERE name = ${name}`;
  return row ? { id: row.id, name: row.name, createdAt: row.created_at } : null;
}

export async function getProject(sql: postgres.Sql, name: string): Promise<Project> {
  const found = await findProject(sql, name);
  if (!found) throw new CloudNotFoundError('project', name);
  return found;
}

/** The projects among `ids` (all of them when null), by name. */
export async function listProjects(
  sql: postgres.Sql,
  ids: readonly string[] | null,
): Promise<Project[]> {
  const rows = await sql<{ id: string; name: string; created_at: Date }[]>`
    SELECT id, name, created_at FROM cloud.projects
    ${ids === null ? sql`` : sql`WHERE id = ANY (${ids as string[]}::uuid[])`}
    ORDER BY name`;
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
}

export async function projectMembers(sql: postgres.Sql, projectId: string): Promise<Member[]> {
  const rows = await sql<{ user: string; role: ProjectRole; added_at: Date }[]>`
    SELECT u.name AS user, m.role, m.added_at
    FROM cloud.members m JOIN cloud.users u ON u.id = m.user_id
    WHERE m.project_id = ${projectId} ORDER BY u.name`;
  return rows.map((r) => ({ user: r.user, role: r.role, addedAt: r.added_at }));
}

/** A user's role in a project, or null when it is not a member. */
export async function memberRole(
  sql: postgres.Sql,
  projectId: string,
  userId: string,
): Promise<ProjectRole | null> {
  const [row] = await sql<{ role: ProjectRole }[]>`
    SELECT role FROM cloud.members WHERE project_id = ${projectId} AND user_id = ${userId}`;
  return row?.role ?? null;
}

/** Gives a user a role in a project (a member already there gets the new role). */
export async function addMember(
  sql: postgres.Sql,
  actor: Actor,
  input: { project: string; user: string; role: ProjectRole },
): Promise<Member[]> {
  const project = await getProject(sql, input.project);
  const user = await getUser(sql, input.user);
  await sql
    .begin(async (tx) => {
      await tx`
        INSERT INTO cloud.members (project_id, user_id, role)
        VALUES (${project.id}, ${user.id}, ${input.role})
        ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role`;
      await recordEvent(tx, actor, {
        projectId: project.id,
        action: 'projects.addMember',
        target: user.name,
        detail: { role: input.role },
      });
    })
    .catch((err: unknown) => {
      // The project was deleted meanwhile.
      if (foreignKeyViolation(err)) throw new CloudNotFoundError('project', input.project);
      throw err;
    });
  return projectMembers(sql, project.id);
}

export async function removeMember(
  sql: postgres.Sql,
  actor: Actor,
  input: { project: string; user: string },
): Promise<Member[]> {
  const project = await getProject(sql, input.project);
  const user = await getUser(sql, input.user);
  await sql.begin(async (tx) => {
    const gone = await tx`
      DELETE FROM cloud.members WHERE project_id = ${project.id} AND user_id = ${user.id}
      RETURNING 1`;
    if (gone.length === 0)
      throw new CloudNotFoundError('member', `${user.name} of ${project.name}`);
    await recordEvent(tx, actor, {
      projectId: project.id,
      action: 'projects.removeMember',
      target: user.name,
    });
  });
  return projectMembers(sql, project.id);
}

/**
 * Deletes a project with its memberships and the tokens narrowed to it; its history stays.
 * Refused while it has instances.
 */
export async function deleteProject(sql: postgres.Sql, actor: Actor, name: string): Promise<void> {
  await sql.begin(async (tx) => {
    // Under the row lock instance claims take: none can be added while this looks.
    const [row] = await tx<{ id: string }[]>`
      SELECT id FROM cloud.projects WHERE name = ${name} FOR UPDATE`;
    if (!row) throw new CloudNotFoundError('project', name);
    const left = await instancesIn(tx, row.id);
    if (left > 0) {
      throw new CloudPreconditionError(`project ${name} still has ${left} instances`);
    }
    await tx`DELETE FROM cloud.projects WHERE id = ${row.id}`;
    await recordEvent(tx, actor, { projectId: row.id, action: 'projects.delete', target: name });
  });
}
