import type postgres from 'postgres';
import {
  CloudConflictError,
  CloudNotFoundError,
  CloudPreconditionError,
  uniqueViolation,
} from '../errors.ts';
import { describeBreach, quotaBreach, type Usage } from '../quota.ts';
import { clusterFromJson, type ClusterAddress } from './clusters.ts';
import { recordEvent, type Actor } from './events.ts';
import { quotaOf, usageOf } from './quotas.ts';

type Queryable = postgres.Sql | postgres.TransactionSql;

/** An instance as the cloud records it; its state is its cluster's to tell. */
export interface InstanceRecord {
  id: string;
  project: string;
  name: string;
  cluster: string;
  /** The VM's name in its cluster. */
  vmName: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  ips: number;
  image: string | null;
  createdAt: Date;
  /** When its cluster accepted its create; null until then. */
  acceptedAt: Date | null;
}

interface Row {
  id: string;
  project: string;
  name: string;
  cluster: string;
  vm_name: string;
  vcpus: number;
  memory_mib: string;
  disk_gib: string;
  ips: number;
  image: string | null;
  created_at: Date;
  accepted_at: Date | null;
}

const record = (r: Row): InstanceRecord => ({
  id: r.id,
  project: r.project,
  name: r.name,
  cluster: r.cluster,
  vmName: r.vm_name,
  vcpus: r.vcpus,
  memoryMiB: Number(r.memory_mib),
  diskGiB: Number(r.disk_gib),
  ips: r.ips,
  image: r.image,
  createdAt: r.created_at,
  acceptedAt: r.accepted_at,
});

const SELECT = (sql: postgres.Sql) => sql`
  SELECT i.id, p.name AS project, i.name, c.name AS cluster, i.vm_name, i.vcpus, i.memory_mib,
         i.disk_gib, i.ips, i.image, i.created_at, i.accepted_at
  FROM cloud.instances i JOIN cloud.projects p ON p.id = i.project_id
  JOIN cloud.clusters c ON c.id = i.cluster_id`;

/** The VM name an instance has in its cluster: no other project's instance can have it. */
export function vmNameOf(project: string, name: string): string {
  // Project names hold no '.', so `<project>.<name>` is one project's alone.
  return `${project}.${name}`;
}

/**
 * Records an instance and claims its share of the project's quota in one transaction, under
 * the project's row lock: concurrent creates are counted one after another, so a quota of 10
 * admits exactly 10 of any number racing. A create over quota is refused naming the quota.
 */
export async function claimInstance(
  sql: postgres.Sql,
  actor: Actor,
  input: {
    projectId: string;
    project: string;
    name: string;
    clusterId: string;
    vcpus: number;
    memoryMiB: number;
    diskGiB: number;
    ips: number;
    image: string | null;
  },
): Promise<InstanceRecord> {
  try {
    const id = await sql.begin(async (tx) => {
      const [held] =
        await tx`SELECT 1 FROM cloud.projects WHERE id = ${input.projectId} FOR UPDATE`;
      // Deleted since the caller was checked.
      if (!held) throw new CloudNotFoundError('project', input.project);
      // Held until the instance is in: the cluster is neither removed nor drained meanwhile.
      const [cluster] = await tx<{ name: string; draining: boolean }[]>`
        SELECT name, draining FROM cloud.clusters WHERE id = ${input.clusterId} FOR SHARE`;
      if (!cluster) throw new CloudNotFoundError('cluster', input.clusterId);
      if (cluster.draining) {
        throw new CloudPreconditionError(
          `cluster ${cluster.name} is draining: it takes no new instances`,
        );
      }
      const asked: Usage = {
        instances: 1,
        vcpus: input.vcpus,
        memoryMiB: input.memoryMiB,
        diskGiB: input.diskGiB,
        ips: input.ips,
      };
      const breach = quotaBreach(
        await quotaOf(tx, input.projectId),
        await usageOf(tx, input.projectId),
        asked,
      );
      if (breach) throw new CloudPreconditionError(describeBreach(input.project, breach));
      const [row] = await tx<{ id: string }[]>`
        INSERT INTO cloud.instances (project_id, name, cluster_id, vm_name, vcpus, memory_mib,
                                     disk_gib, ips, image, created_by)
        VALUES (${input.projectId}, ${input.name}, ${input.clusterId},
                ${vmNameOf(input.project, input.name)}, ${input.vcpus}, ${input.memoryMiB},
                ${input.diskGiB}, ${input.ips}, ${input.image}, ${actor.userId})
        RETURNING id`;
      await recordEvent(tx, actor, {
        projectId: input.projectId,
        action: 'instances.create',
        target: input.name,
        detail: { instance: row!.id, clusterId: input.clusterId },
      });
      return row!.id;
    });
    return await instanceById(sql, id);
  } catch (err) {
    if (uniqueViolation(err)) {
      throw new CloudConflictError(`instance ${input.name} exists in project ${input.project}`);
    }
    throw err;
  }
}

async function instanceById(sql: postgres.Sql, id: string): Promise<InstanceRecord> {
  const [row] = await sql<Row[]>`${SELECT(sql)} WHERE i.id = ${id}`;
  if (!row) throw new CloudNotFoundError('instance', id);
  return record(row);
}

/** A live instance of a project, by name. */
/**
 * A project's live instance by name, with the cluster that holds it; with `deleted`, else its
 * last deleted one of that name (whose decommission a caller may still follow).
 */
export async function getInstance(
  sql: postgres.Sql,
  projectId: string,
  name: string,
  options: { deleted?: boolean } = {},
): Promise<{ instance: InstanceRecord; cluster: ClusterAddress }> {
  const [row] = await sql<(Row & { cluster_row: Parameters<typeof clusterFromJson>[0] })[]>`
    SELECT i.id, p.name AS project, i.name, c.name AS cluster, i.vm_name, i.vcpus, i.memory_mib,
           i.disk_gib, i.ips, i.image, i.created_at, i.accepted_at, to_jsonb(c) AS cluster_row
    FROM cloud.instances i JOIN cloud.projects p ON p.id = i.project_id
    JOIN cloud.clusters c ON c.id = i.cluster_id
    WHERE i.project_id = ${projectId} AND i.name = ${name}
      ${options.deleted ? sql`` : sql`AND i.deleted_at IS NULL`}
    ORDER BY i.deleted_at DESC NULLS FIRST LIMIT 1`;
  if (!row) throw new CloudNotFoundError('instance', name);
  return { instance: record(row), cluster: clusterFromJson(row.cluster_row) };
}

/** A project's live instances by name, a page at a time (`after`: the last name seen). */
export async function listInstances(
  sql: postgres.Sql,
  projectId: string,
  page: {
    limit: number;
    after?: string | undefined;
    cluster?: string | undefined;
    prefix?: string | undefined;
  },
): Promise<InstanceRecord[]> {
  const rows = await sql<Row[]>`
    ${SELECT(sql)} WHERE i.project_id = ${projectId} AND i.deleted_at IS NULL
      ${page.after === undefined ? sql`` : sql`AND i.name > ${page.after}`}
      ${page.cluster === undefined ? sql`` : sql`AND c.name = ${page.cluster}`}
      ${page.prefix === undefined ? sql`` : sql`AND starts_with(i.name, ${page.prefix})`}
    ORDER BY i.name LIMIT ${page.limit}`;
  return rows.map(record);
}

/**
 * Gives an instance's share back and frees its name: its create failed before its cluster took
 * it (`forget`), or its delete was accepted (`delete`).
 */
/**
 * Its cluster has taken its create: from now on, a cluster without its VM has lost it. False
 * when the instance was deleted or given back meanwhile (its VM is then no one's).
 */
export async function acceptInstance(sql: postgres.Sql, id: string): Promise<boolean> {
  const done = await sql`
    UPDATE cloud.instances SET accepted_at = coalesce(accepted_at, now())
    WHERE id = ${id} AND deleted_at IS NULL`;
  return done.count > 0;
}

/**
 * Gives the instance's share of the quota back, and its name: `delete` (asked for), `forget`
 * (its cluster refused the create: no trace but the event), `lost` (its cluster no longer has
 * its VM: its create failed there, or it was removed; `reason` says which the cloud saw).
 * Answers false when it was released already.
 */
export async function releaseInstance(
  sql: postgres.Sql,
  actor: Actor,
  instance: InstanceRecord,
  projectId: string,
  why: 'delete' | 'forget' | 'lost',
  /** What else the event records: why it was lost, the decommission's operation. */
  more: Record<string, unknown> = {},
): Promise<boolean> {
  return sql.begin(async (tx) => {
    const gone =
      why === 'forget'
        ? await tx`DELETE FROM cloud.instances WHERE id = ${instance.id}`
        : await tx`UPDATE cloud.instances SET deleted_at = now()
                   WHERE id = ${instance.id} AND deleted_at IS NULL`;
    if (gone.count === 0) return false;
    await recordEvent(tx, actor, {
      projectId,
      action: {
        delete: 'instances.delete',
        forget: 'instances.create-refused',
        lost: 'instances.lost',
      }[why],
      target: instance.name,
      detail: { instance: instance.id, cluster: instance.cluster, ...more },
    });
    return true;
  });
}

/** A page of a cluster's live instances by VM name (`after`: the last VM name seen). */
export async function instancesOnCluster(
  sql: postgres.Sql,
  clusterId: string,
  page: { limit: number; after?: string },
): Promise<Array<InstanceRecord & { projectId: string }>> {
  const rows = await sql<(Row & { project_id: string })[]>`
    SELECT i.id, p.name AS project, i.project_id, i.name, c.name AS cluster, i.vm_name, i.vcpus,
           i.memory_mib, i.disk_gib, i.ips, i.image, i.created_at, i.accepted_at
    FROM cloud.instances i JOIN cloud.projects p ON p.id = i.project_id
    JOIN cloud.clusters c ON c.id = i.cluster_id
    WHERE i.cluster_id = ${clusterId} AND i.deleted_at IS NULL
      ${page.after === undefined ? sql`` : sql`AND i.vm_name > ${page.after}`}
    ORDER BY i.vm_name LIMIT ${page.limit}`;
  return rows.map((r) => ({ ...record(r), projectId: r.project_id }));
}

/** How many live instances a cluster holds (a cluster with any cannot be removed). */
export async function instancesOn(sql: Queryable, clusterId: string): Promise<number> {
  const [row] = await sql<{ n: string }[]>`
    SELECT count(*) AS n FROM cloud.instances WHERE cluster_id = ${clusterId} AND deleted_at IS NULL`;
  return Number(row!.n);
}

/** How many live instances a project holds (a project with any cannot be deleted). */
export async function instancesIn(sql: Queryable, projectId: string): Promise<number> {
  const [row] = await sql<{ n: string }[]>`
    SELECT count(*) AS n FROM cloud.instances WHERE project_id = ${projectId} AND deleted_at IS NULL`;
  return Number(row!.n);
}
