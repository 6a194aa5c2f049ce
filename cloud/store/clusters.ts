import type postgres from 'postgres';
import {
  CloudConflictError,
  CloudNotFoundError,
  CloudPreconditionError,
  uniqueViolation,
} from '../errors.ts';
import { instancesOn } from './instances.ts';
import { recordEvent, type Actor } from './events.ts';

/** A cluster as the cloud records it; its token is never answered. */
export interface Cluster {
  id: string;
  name: string;
  driver: 'local' | 'vagoth';
  url: string | null;
  region: string;
  tags: Record<string, string>;
  draining: boolean;
  createdAt: Date;
}

/** What a driver needs to reach the cluster: the record and its token. */
export type ClusterAddress = Cluster & { token: string | null };

interface Row {
  id: string;
  name: string;
  driver: 'local' | 'vagoth';
  url: string | null;
  token: string | null;
  region: string;
  tags: Record<string, string>;
  draining: boolean;
  created_at: Date;
}

const address = (r: Row): ClusterAddress => ({
  id: r.id,
  name: r.name,
  driver: r.driver,
  url: r.url,
  token: r.token,
  region: r.region,
  tags: r.tags,
  draining: r.draining,
  createdAt: r.created_at,
});

/** A cluster's row as `to_jsonb` gives it (joined to another record's query). */
export function clusterFromJson(row: Omit<Row, 'created_at'> & { created_at: string }) {
  return address({ ...row, created_at: new Date(row.created_at) });
}

/** The record without its token, for answers. */
export function publicCluster({ token: _token, ...cluster }: ClusterAddress): Cluster {
  return cluster;
}

const COLUMNS = (sql: postgres.Sql) =>
  sql`id, name, driver, url, token, region, tags, draining, created_at`;

export async function registerCluster(
  sql: postgres.Sql,
  actor: Actor,
  input: {
    name: string;
    driver: 'local' | 'vagoth';
    url: string | null;
    token: string | null;
    region: string;
    tags: Record<string, string>;
  },
): Promise<ClusterAddress> {
  try {
    return await sql.begin(async (tx) => {
      const [row] = await tx<Row[]>`
        INSERT INTO cloud.clusters (name, driver, url, token, region, tags)
        VALUES (${input.name}, ${input.driver}, ${input.url}, ${input.token}, ${input.region},
                ${tx.json(input.tags)})
        RETURNING ${COLUMNS(sql)}`;
      await recordEvent(tx, actor, {
        projectId: null,
        action: 'clusters.register',
        target: input.name,
        detail: { driver: input.driver, url: input.url, region: input.region },
      });
      return address(row!);
    });
  } catch (err) {
    const broke = uniqueViolation(err);
    if (broke === 'clusters_one_local') {
      throw new CloudConflictError('the local cluster is registered already');
    }
    if (broke) throw new CloudConflictError(`cluster ${input.name} exists`);
    throw err;
  }
}

export async function listClusters(sql: postgres.Sql): Promise<ClusterAddress[]> {
  const rows = await sql<Row[]>`SELECT ${COLUMNS(sql)} FROM cloud.clusters ORDER BY name`;
  return rows.map(address);
}

export async function getCluster(sql: postgres.Sql, name: string): Promise<ClusterAddress> {
  const [row] = await sql<Row[]>`SELECT ${COLUMNS(sql)} FROM cloud.clusters WHERE name = ${name}`;
  if (!row) throw new CloudNotFoundError('cluster', name);
  return address(row);
}

/** No new instances go to a draining cluster; `draining: false` opens it again. */
export async function setDraining(
  sql: postgres.Sql,
  actor: Actor,
  name: string,
  draining: boolean,
): Promise<ClusterAddress> {
  return sql.begin(async (tx) => {
    const [row] = await tx<Row[]>`
      UPDATE cloud.clusters SET draining = ${draining} WHERE name = ${name}
      RETURNING ${COLUMNS(sql)}`;
    if (!row) throw new CloudNotFoundError('cluster', name);
    await recordEvent(tx, actor, {
      projectId: null,
      action: draining ? 'clusters.drain' : 'clusters.undrain',
      target: name,
    });
    return address(row);
  });
}

/** Forgets a cluster; refused while instances remain there. */
export async function removeCluster(sql: postgres.Sql, actor: Actor, name: string): Promise<void> {
  await sql.begin(async (tx) => {
    const [row] = await tx<{ id: string }[]>`
      SELECT id FROM cloud.clusters WHERE name = ${name} FOR UPDATE`;
    if (!row) throw new CloudNotFoundError('cluster', name);
    const left = await instancesOn(tx, row.id);
    if (left > 0) throw new CloudPreconditionError(`cluster ${name} still has ${left} instances`);
    await tx`DELETE FROM cloud.clusters WHERE id = ${row.id}`;
    await recordEvent(tx, actor, { projectId: null, action: 'clusters.remove', target: name });
  });
}
