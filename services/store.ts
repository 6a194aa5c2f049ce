import type postgres from 'postgres';
import type { CloudInstanceInput } from './clouds/driver.ts';
import type { Member } from './reconcile-step.ts';
import { templateRevision } from './revision.ts';

/** The instance definition every instance of a service is made from. */
export type Template = Omit<CloudInstanceInput, 'project' | 'name'>;

/** What a service declares; the rest of its record is the service layer's. */
export interface ServiceSpecInput {
  template: Template;
  replicas: number;
  spread: 'host' | 'cluster' | null;
  rollout: { maxUnavailable: number; maxSurge: number };
  everySeconds: number;
  unknownGraceSeconds: number;
  health: { tcp: number } | { http: { port: number; path: string } } | null;
  unhealthyAfter: number;
}

export interface Service extends ServiceSpecInput {
  id: string;
  project: string;
  name: string;
  revision: string;
  paused: boolean;
  deletingAt: Date | null;
  status: Record<string, unknown>;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export class ServiceNotFoundError extends Error {
  override name = 'ServiceNotFoundError';
  constructor(project: string, name: string) {
    super(`service ${JSON.stringify(`${project}/${name}`)} not found`);
  }
}

export class ServiceConflictError extends Error {
  override name = 'ServiceConflictError';
}

interface Row {
  id: string;
  project: string;
  name: string;
  template: Template;
  revision: string;
  replicas: number;
  spread: 'host' | 'cluster' | null;
  max_unavailable: number;
  max_surge: number;
  every_seconds: number;
  unknown_grace_seconds: number;
  health: ServiceSpecInput['health'];
  unhealthy_after: number;
  paused: boolean;
  deleting_at: Date | null;
  status: Record<string, unknown>;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const service = (r: Row): Service => ({
  id: r.id,
  project: r.project,
  name: r.name,
  template: r.template,
  revision: r.revision,
  replicas: r.replicas,
  spread: r.spread,
  rollout: { maxUnavailable: r.max_unavailable, maxSurge: r.max_surge },
  everySeconds: r.every_seconds,
  unknownGraceSeconds: r.unknown_grace_seconds,
  health: r.health,
  unhealthyAfter: r.unhealthy_after,
  paused: r.paused,
  deletingAt: r.deleting_at,
  status: r.status,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type Queryable = postgres.Sql | postgres.TransactionSql;

async function event(
  sql: Queryable,
  serviceId: string,
  actor: string | null,
  action: string,
  detail: Record<string, unknown>,
) {
  await sql`
    INSERT INTO services.events (service_id, actor, action, detail)
    VALUES (${serviceId}, ${actor}, ${action}, ${sql.json(detail as postgres.JSONValue)})`;
}

/** Records a service; a name its project holds already is a conflict. */
export async function createService(
  sql: postgres.Sql,
  input: ServiceSpecInput & { project: string; name: string; createdBy: string; token: string },
): Promise<Service> {
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<Row[]>`
        INSERT INTO services.services (project, name, template, revision, replicas, spread,
          max_unavailable, max_surge, every_seconds, unknown_grace_seconds, health,
          unhealthy_after, created_by, token)
        VALUES (${input.project}, ${input.name},
          ${tx.json(input.template as postgres.JSONValue)}, ${templateRevision(input.template)},
          ${input.replicas}, ${input.spread}, ${input.rollout.maxUnavailable},
          ${input.rollout.maxSurge}, ${input.everySeconds}, ${input.unknownGraceSeconds},
          ${input.health === null ? null : tx.json(input.health as postgres.JSONValue)},
          ${input.unhealthyAfter}, ${input.createdBy}, ${input.token})
        RETURNING *`;
      await event(tx, row!.id, input.createdBy, 'services.create', {
        replicas: input.replicas,
        revision: row!.revision,
      });
      return service(row!);
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') {
      throw new ServiceConflictError(`service ${input.name} exists in project ${input.project}`);
    }
    throw err;
  }
}

export async function getService(sql: Queryable, project: string, name: string) {
  const [row] = await sql<Row[]>`
    SELECT * FROM services.services WHERE project = ${project} AND name = ${name}`;
  if (!row) throw new ServiceNotFoundError(project, name);
  return service(row);
}

export async function getServiceById(sql: Queryable, id: string): Promise<Service | null> {
  const [row] = await sql<Row[]>`SELECT * FROM services.services WHERE id = ${id}`;
  return row ? service(row) : null;
}

/** The cloud token a service acts with: for its reconciles only. */
export async function serviceToken(sql: Queryable, id: string): Promise<string | null> {
  const [row] = await sql<{ token: string }[]>`
    SELECT token FROM services.services WHERE id = ${id}`;
  return row?.token ?? null;
}

export async function listServices(sql: postgres.Sql, project: string): Promise<Service[]> {
  const rows = await sql<Row[]>`
    SELECT * FROM services.services WHERE project = ${project} ORDER BY name`;
  return rows.map(service);
}

/**
 * Changes what a service declares; a new template gives a new revision (its instances are
 * then rolled forward). Refused once its delete was asked.
 */
export async function updateService(
  sql: postgres.Sql,
  at: { project: string; name: string },
  actor: string,
  change: Partial<Omit<ServiceSpecInput, 'spread'>> & { paused?: boolean },
): Promise<Service> {
  return sql.begin(async (tx) => {
    const [held] = await tx<Row[]>`
      SELECT * FROM services.services WHERE project = ${at.project} AND name = ${at.name}
      FOR UPDATE`;
    if (!held) throw new ServiceNotFoundError(at.project, at.name);
    if (held.deleting_at) {
      throw new ServiceConflictError(`service ${at.name} is being deleted`);
    }
    const was = service(held);
    const next = { ...was, ...change, rollout: change.rollout ?? was.rollout };
    const revision = change.template ? templateRevision(change.template) : was.revision;
    const [row] = await tx<Row[]>`
      UPDATE services.services SET
        template = ${tx.json(next.template as postgres.JSONValue)}, revision = ${revision},
        replicas = ${next.replicas}, max_unavailable = ${next.rollout.maxUnavailable},
        max_surge = ${next.rollout.maxSurge}, every_seconds = ${next.everySeconds},
        unknown_grace_seconds = ${next.unknownGraceSeconds},
        health = ${next.health === null ? null : tx.json(next.health as postgres.JSONValue)},
        unhealthy_after = ${next.unhealthyAfter}, paused = ${next.paused}, updated_at = now()
      WHERE id = ${held.id} RETURNING *`;
    const changed = Object.keys(change).filter((k) => k !== 'template');
    await event(tx, held.id, actor, 'services.update', {
      changed: change.template ? [...changed, 'template'] : changed,
      ...(revision !== was.revision ? { revision: { from: was.revision, to: revision } } : {}),
    });
    return service(row!);
  });
}

/** Its delete is asked: from now on its reconciles delete its instances, then the service. */
export async function markDeleting(sql: postgres.Sql, id: string, actor: string): Promise<void> {
  await sql.begin(async (tx) => {
    const done = await tx`
      UPDATE services.services SET deleting_at = now(), updated_at = now()
      WHERE id = ${id} AND deleting_at IS NULL`;
    if (done.count > 0) await event(tx, id, actor, 'services.delete', {});
  });
}

export async function membersOf(sql: Queryable, serviceId: string): Promise<Member[]> {
  const rows = await sql<{ idx: number; revision: string; created_at: Date; name: string }[]>`
    SELECT m.idx, m.revision, m.created_at, s.name
    FROM services.members m JOIN services.services s ON s.id = m.service_id
    WHERE m.service_id = ${serviceId} ORDER BY m.idx`;
  return rows.map((r) => ({
    name: `${r.name}-${r.idx}`,
    index: r.idx,
    revision: r.revision,
    createdAt: r.created_at,
  }));
}

/** A member recorded before its create is asked (so a lost answer leaves a trace). */
export async function addMember(sql: postgres.Sql, serviceId: string, m: Member): Promise<void> {
  await sql`
    INSERT INTO services.members (service_id, idx, revision, created_at)
    VALUES (${serviceId}, ${m.index}, ${m.revision}, ${m.createdAt})
    ON CONFLICT (service_id, idx) DO UPDATE SET revision = excluded.revision`;
}

/** A member whose create the cloud refused: nothing of it was made. */
export async function dropMember(sql: postgres.Sql, serviceId: string, m: Member): Promise<void> {
  await sql`DELETE FROM services.members WHERE service_id = ${serviceId} AND idx = ${m.index}`;
}

/** What went wrong in the service's last reconcile, for its status. */
export async function saveFailure(sql: postgres.Sql, serviceId: string, error: string) {
  await sql`
    UPDATE services.services
    SET status = status || ${sql.json({ error, failedAt: new Date().toISOString() })}
    WHERE id = ${serviceId}`;
}

/**
 * Records what a reconcile left: its members (all of them, in place of the last ones) and its
 * status, in one transaction, with an event when it made or deleted anything.
 */
export async function saveReconcile(
  sql: postgres.Sql,
  serviceId: string,
  members: readonly Member[],
  status: Record<string, unknown>,
  did: { created: string[]; deleted: string[] },
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`DELETE FROM services.members WHERE service_id = ${serviceId}`;
    if (members.length > 0) {
      await tx`
        INSERT INTO services.members ${tx(
          members.map((m) => ({
            service_id: serviceId,
            idx: m.index,
            revision: m.revision,
            created_at: m.createdAt,
          })),
        )}`;
    }
    await tx`
      UPDATE services.services SET status = ${tx.json(status as postgres.JSONValue)}
      WHERE id = ${serviceId}`;
    if (did.created.length > 0 || did.deleted.length > 0) {
      await event(tx, serviceId, null, 'services.reconcile', did);
    }
  });
}

/** Removes a service being deleted once it has no instance left; false while it has some. */
export async function removeService(sql: postgres.Sql, id: string): Promise<boolean> {
  const gone = await sql`
    DELETE FROM services.services s
    WHERE s.id = ${id} AND s.deleting_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM services.members m WHERE m.service_id = s.id)`;
  return gone.count > 0;
}

export async function serviceEvents(sql: postgres.Sql, serviceId: string, limit: number) {
  return sql<
    { id: string; at: Date; actor: string | null; action: string; detail: object }[]
  >`SELECT id::text, at, actor, action, detail FROM services.events
    WHERE service_id = ${serviceId} ORDER BY id DESC LIMIT ${limit}`;
}
