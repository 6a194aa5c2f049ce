import type postgres from 'postgres';
import type { CloudInstanceInput } from './clouds/driver.ts';
import { cloudsActedMoreIn, putCloudTokens, type CloudToken } from './cloud-tokens.ts';
import type { Member } from './reconcile-step.ts';
import type { Health } from './probe.ts';
import { templateRevision } from './revision.ts';
import { ONE_PER_CLUSTER, overSpread, placedTotal } from './placements.ts';
import { keepMinted, queueRevocations } from './revocations.ts';
import { renewStep, StepLeaseLostError } from './step-lease.ts';

/** The instance definition every instance of a service is made from. */
export type Template = Omit<
  CloudInstanceInput,
  'project' | 'name' | 'cluster' | 'region' | 'placement' | 'nics'
> & { nics: { network: string }[] };

/** What a service declares; the rest of its record is the service layer's. */
export interface ServiceSpecInput {
  template: Template;
  replicas: number;
  spread: 'host' | 'cluster' | null;
  rollout: { maxUnavailable: number; maxSurge: number };
  everySeconds: number;
  unknownGraceSeconds: number;
  health: Health | null;
  unhealthyAfter: number;
  /** Where its replicas go; null: wherever its cloud places them. */
  placements: Placement[] | null;
}

/**
 * Some of a service's replicas, in one cluster or region of a cloud: its own, or another
 * vagoth cloud the operator allows (`cloud`, by name).
 */
export interface Placement {
  cloud?: string | undefined;
  cluster?: string | undefined;
  region?: string | undefined;
  replicas: number;
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

/** A change the service's own declaration refuses: `field` names the input field. */
export class ServiceInputError extends Error {
  override name = 'ServiceInputError';
  constructor(
    readonly field: string,
    why: string,
  ) {
    super(`${field}: ${why}`);
  }
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
  placements: Placement[] | null;
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
  placements: r.placements,
  paused: r.paused,
  deletingAt: r.deleting_at,
  status: r.status,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

type Queryable = postgres.Sql | postgres.TransactionSql;

const jsonOrNull = (sql: Queryable, value: object | null) =>
  value === null ? null : sql.json(value as postgres.JSONValue);

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
  input: ServiceSpecInput & {
    project: string;
    name: string;
    createdBy: string;
    /** Its own cloud token (and that token's id, to revoke it once the service is gone). */
    token: string;
    tokenId: string | null;
    /** Its tokens in the other clouds its placements name, minted there. */
    cloudTokens?: readonly CloudToken[];
  },
): Promise<Service> {
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<Row[]>`
        INSERT INTO services.services (project, name, template, revision, replicas, spread,
          max_unavailable, max_surge, every_seconds, unknown_grace_seconds, health,
          unhealthy_after, placements, created_by, token, token_id)
        VALUES (${input.project}, ${input.name},
          ${tx.json(input.template as postgres.JSONValue)}, ${templateRevision(input.template)},
          ${input.replicas}, ${input.spread}, ${input.rollout.maxUnavailable},
          ${input.rollout.maxSurge}, ${input.everySeconds}, ${input.unknownGraceSeconds},
          ${jsonOrNull(tx, input.health)},
          ${input.unhealthyAfter}, ${jsonOrNull(tx, input.placements)}, ${input.createdBy},
          ${input.token}, ${input.tokenId})
        RETURNING *`;
      await putCloudTokens(
        tx,
        { id: row!.id, label: `${input.project}/${input.name}` },
        input.placements,
        input.cloudTokens ?? [],
      );
      await mustKeep(tx, [
        ...(input.cloudTokens ?? []),
        ...(input.tokenId === null ? [] : [{ cloud: null, tokenId: input.tokenId }]),
      ]);
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

/**
 * Tokens minted for this call, stored by this transaction: taken back from the queue they were
 * held in (services/revocations.ts). One a sweep tried already is not stored: the call fails,
 * to be made again.
 */
async function mustKeep(
  tx: postgres.TransactionSql,
  tokens: readonly { cloud: string | null; tokenId: string }[],
) {
  if (!(await keepMinted(tx, tokens))) {
    throw new ServiceConflictError(
      'a token minted for this call waited too long to be stored and may be revoked: try again',
    );
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

/** A service with the cloud token it acts with: for its reconciles only. */
export async function serviceWithToken(
  sql: Queryable,
  id: string,
): Promise<{ service: Service; token: string; tokenId: string | null } | null> {
  const [row] = await sql<(Row & { token: string; token_id: string | null })[]>`
    SELECT * FROM services.services WHERE id = ${id}`;
  return row ? { service: service(row), token: row.token, tokenId: row.token_id } : null;
}

/**
 * The service acts with `minted` from now on, `actor` says, in the place of `was.token` (its
 * own, found dead). Another call may have found it dead too and put its own in its place
 * first (or the service is gone): then `minted` is not needed, and is queued to be revoked in
 * this transaction, never left live. Answers the records queued, to try once committed.
 */
export async function replaceServiceToken(
  sql: postgres.Sql,
  id: string,
  actor: string,
  minted: { id: string; token: string },
  was: { token: string; service: string },
): Promise<string[]> {
  return sql.begin(async (tx) => {
    const took = await tx`
      UPDATE services.services SET token = ${minted.token}, token_id = ${minted.id}
      WHERE id = ${id} AND token = ${was.token}`;
    if (took.count === 0) {
      return queueRevocations(tx, was.service, [
        { cloud: null, token: minted.token, tokenId: minted.id },
      ]);
    }
    await mustKeep(tx, [{ cloud: null, tokenId: minted.id }]);
    await event(tx, id, actor, 'services.token', { reason: 'its token no longer worked' });
    return [];
  });
}

/** Every service, as its schedule needs it: for a worker to make again those gone missing. */
export async function allSchedules(sql: postgres.Sql) {
  const rows = await sql<
    {
      id: string;
      project: string;
      name: string;
      every_seconds: number;
      paused: boolean;
      deleting: boolean;
    }[]
  >`SELECT id, project, name, every_seconds, paused, deleting_at IS NOT NULL AS deleting
    FROM services.services ORDER BY project, name`;
  return rows.map((r) => ({
    id: r.id,
    project: r.project,
    name: r.name,
    everySeconds: r.every_seconds,
    // One being deleted runs until it is gone, paused or not.
    paused: r.paused && !r.deleting,
  }));
}

export async function listServices(sql: postgres.Sql, project: string): Promise<Service[]> {
  const rows = await sql<Row[]>`
    SELECT * FROM services.services WHERE project = ${project} ORDER BY name`;
  return rows.map(service);
}

/**
 * Changes what a service declares; a new template gives a new revision (its instances are
 * then rolled forward). Refused once its delete was asked, but for tokens in other clouds
 * given alone (to renew them). Its placements may name another cloud only where it has a
 * token (kept, or among `cloudTokens`, minted for this change); the tokens those take the
 * place of are queued to be revoked: `revoke` are their records, to try once committed.
 */
export async function updateService(
  sql: postgres.Sql,
  at: { project: string; name: string },
  actor: string,
  change: Partial<Omit<ServiceSpecInput, 'spread'>> & { paused?: boolean },
  cloudTokens: readonly CloudToken[] = [],
): Promise<Service & { revoke: string[] }> {
  return sql.begin(async (tx) => {
    const [held] = await tx<Row[]>`
      SELECT * FROM services.services WHERE project = ${at.project} AND name = ${at.name}
      FOR UPDATE`;
    if (!held) throw new ServiceNotFoundError(at.project, at.name);
    // Being deleted, only its tokens in other clouds may be renewed: one that died there would
    // leave the service's instances there, and the service, for good.
    const changes = Object.values(change).some((v) => v !== undefined);
    if (held.deleting_at && (changes || cloudTokens.length === 0)) {
      throw new ServiceConflictError(`service ${at.name} is being deleted`);
    }
    const was = service(held);
    const next = { ...was, ...change, rollout: change.rollout ?? was.rollout };
    if (change.placements === undefined && change.replicas !== undefined && was.placements) {
      if (change.replicas !== placedTotal(was.placements)) {
        throw new ServiceConflictError(
          `service ${at.name} has placements: scale it by giving its placements`,
        );
      }
    }
    if (change.placements) next.replicas = placedTotal(change.placements);
    // Its spread is the one it was made with (an update cannot change it).
    const [over] = overSpread(was.spread, change.placements);
    if (over !== undefined) {
      throw new ServiceInputError(`placements.${over}.replicas`, ONE_PER_CLUSTER);
    }
    const revision = change.template ? templateRevision(change.template) : was.revision;
    const [row] = await tx<Row[]>`
      UPDATE services.services SET
        template = ${tx.json(next.template as postgres.JSONValue)}, revision = ${revision},
        replicas = ${next.replicas}, max_unavailable = ${next.rollout.maxUnavailable},
        max_surge = ${next.rollout.maxSurge}, every_seconds = ${next.everySeconds},
        unknown_grace_seconds = ${next.unknownGraceSeconds},
        health = ${jsonOrNull(tx, next.health)}, placements = ${jsonOrNull(tx, next.placements)},
        unhealthy_after = ${next.unhealthyAfter}, paused = ${next.paused}, updated_at = now()
      WHERE id = ${held.id} RETURNING *`;
    const revoke = await putCloudTokens(
      tx,
      { id: held.id, label: `${at.project}/${at.name}` },
      next.placements,
      cloudTokens,
      cloudsActedMoreIn(was, { placements: next.placements, revision }),
    );
    await mustKeep(tx, cloudTokens);
    const changed = Object.keys(change).filter((k) => k !== 'template');
    await event(tx, held.id, actor, 'services.update', {
      changed: change.template ? [...changed, 'template'] : changed,
      ...(revision !== was.revision ? { revision: { from: was.revision, to: revision } } : {}),
      ...(cloudTokens.length > 0 ? { clouds: cloudTokens.map((t) => t.cloud) } : {}),
    });
    return { ...service(row!), revoke };
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

interface MemberRow {
  idx: number;
  revision: string;
  created_at: Date;
  name: string;
  cloud: string | null;
  placement: string | null;
  unknown_since: Date | null;
  failed_checks: number;
  retiring: string | null;
  instance_id: string | null;
  healthy: boolean;
}

export async function membersOf(sql: Queryable, serviceId: string): Promise<Member[]> {
  const rows = await sql<MemberRow[]>`
    SELECT m.*, s.name
    FROM services.members m JOIN services.services s ON s.id = m.service_id
    WHERE m.service_id = ${serviceId} ORDER BY m.idx`;
  return rows.map((r) => ({
    name: `${r.name}-${r.idx}`,
    index: r.idx,
    revision: r.revision,
    createdAt: r.created_at,
    cloud: r.cloud,
    placement: r.placement,
    unknownSince: r.unknown_since,
    failedChecks: r.failed_checks,
    retiring: r.retiring,
    instanceId: r.instance_id,
    healthy: r.healthy,
  }));
}

const memberRow = (serviceId: string, m: Member) => ({
  service_id: serviceId,
  idx: m.index,
  revision: m.revision,
  created_at: m.createdAt,
  cloud: m.cloud ?? null,
  placement: m.placement ?? null,
  unknown_since: m.unknownSince ?? null,
  failed_checks: m.failedChecks ?? 0,
  retiring: m.retiring ?? null,
  instance_id: m.instanceId ?? null,
  healthy: m.healthy ?? false,
});

/** Runs `write` in one transaction, only while `owner` holds the service's step lease. */
async function asStepOwner(
  sql: postgres.Sql,
  serviceId: string,
  owner: string,
  write: (tx: postgres.TransactionSql) => Promise<unknown>,
): Promise<void> {
  await sql.begin(async (tx) => {
    await renewStep(tx, serviceId, owner);
    await write(tx);
  });
}

/**
 * A member recorded before its create is asked (so a lost answer leaves a trace), by the step
 * holding the service's lease only.
 */
export const addMember = (sql: postgres.Sql, serviceId: string, owner: string, m: Member) =>
  asStepOwner(
    sql,
    serviceId,
    owner,
    (tx) => tx`
      INSERT INTO services.members ${tx(memberRow(serviceId, m))}
      ON CONFLICT (service_id, idx) DO UPDATE
      SET revision = excluded.revision, placement = excluded.placement, cloud = excluded.cloud`,
  );

/** A member whose create the cloud refused: nothing of it was made. */
export const dropMember = (sql: postgres.Sql, serviceId: string, owner: string, m: Member) =>
  asStepOwner(
    sql,
    serviceId,
    owner,
    (tx) => tx`DELETE FROM services.members WHERE service_id = ${serviceId} AND idx = ${m.index}`,
  );

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
  owner: string,
  members: readonly Member[],
  status: Record<string, unknown>,
  did: { created: string[]; deleted: string[] },
  /** The members as the step found them: when nothing of them changed, only the status is. */
  previous?: readonly Member[],
): Promise<void> {
  const rows = (list: readonly Member[]) =>
    JSON.stringify(list.map((m) => memberRow(serviceId, m)));
  if (previous && rows(previous) === rows(members)) {
    const saved = await sql`
      UPDATE services.services SET status = ${sql.json(status as postgres.JSONValue)}
      WHERE id = ${serviceId} AND step_owner = ${owner}`;
    if (saved.count === 0) throw new StepLeaseLostError(serviceId);
    return;
  }
  await asStepOwner(sql, serviceId, owner, async (tx) => {
    await tx`DELETE FROM services.members WHERE service_id = ${serviceId}`;
    if (members.length > 0) {
      await tx`
        INSERT INTO services.members ${tx(members.map((m) => memberRow(serviceId, m)))}`;
    }
    await tx`
      UPDATE services.services SET status = ${tx.json(status as postgres.JSONValue)}
      WHERE id = ${serviceId}`;
    if (did.created.length > 0 || did.deleted.length > 0) {
      await event(tx, serviceId, null, 'services.reconcile', did);
    }
  });
}

/** Removes a service just recorded whose schedule could not be made: it never ran. */
export async function forgetService(sql: postgres.Sql, id: string): Promise<void> {
  await sql`
    DELETE FROM services.services s
    WHERE s.id = ${id} AND NOT EXISTS (SELECT 1 FROM services.members m WHERE m.service_id = s.id)`;
}

/**
 * Removes a service being deleted once it has no instance left; null while it has some. The
 * token it holds as it goes (not necessarily the one its reconcile read: a call beside it may
 * have renewed it) is queued to be revoked in the same transaction: answers that record, to
 * try once committed.
 */
export async function removeService(sql: postgres.Sql, id: string): Promise<string[] | null> {
  return sql.begin(async (tx) => {
    const [gone] = await tx<{ label: string; token: string; token_id: string | null }[]>`
      DELETE FROM services.services s
      WHERE s.id = ${id} AND s.deleting_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM services.members m WHERE m.service_id = s.id)
      RETURNING project || '/' || name AS label, token, token_id`;
    if (!gone) return null;
    // One recorded before token ids were kept cannot be revoked: it expires.
    if (gone.token_id === null) return [];
    return queueRevocations(tx, gone.label, [
      { cloud: null, token: gone.token, tokenId: gone.token_id },
    ]);
  });
}

export async function serviceEvents(sql: postgres.Sql, serviceId: string, limit: number) {
  return sql<
    { id: string; at: Date; actor: string | null; action: string; detail: object }[]
  >`SELECT id::text, at, actor, action, detail FROM services.events
    WHERE service_id = ${serviceId} ORDER BY id DESC LIMIT ${limit}`;
}
