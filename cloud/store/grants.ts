import type postgres from 'postgres';
import { CloudNotFoundError, foreignKeyViolation } from '../errors.ts';
import { recordEvent, type Actor } from './events.ts';

/** What of a cluster's a project may use: a network to attach to, an image to boot from. */
export type GrantKind = 'network' | 'image';

export interface Grant {
  cluster: string;
  /** The network's or image's name in its cluster. */
  name: string;
  /** The project it was granted to, or `public`: published to every project. */
  owner: string;
  grantedAt: Date;
}

/** What a grant is of, and to whom: `projectId` null publishes it to every project. */
export interface GrantKey {
  kind: GrantKind;
  clusterId: string;
  name: string;
  projectId: string | null;
}

const ACTION: Record<GrantKind, { grant: string; revoke: string }> = {
  network: { grant: 'networks.grant', revoke: 'networks.revoke' },
  image: { grant: 'images.publish', revoke: 'images.unpublish' },
};

/** Records the grant (granting twice changes nothing) with its event, in one transaction. */
export async function grant(sql: postgres.Sql, actor: Actor, key: GrantKey): Promise<void> {
  await sql
    .begin(async (tx) => {
      await tx`
      INSERT INTO cloud.grants (kind, cluster_id, name, project_id)
      VALUES (${key.kind}, ${key.clusterId}, ${key.name}, ${key.projectId})
      ON CONFLICT (kind, cluster_id, name,
                   COALESCE(project_id, '00000000-0000-0000-0000-000000000000'))
      DO NOTHING`;
      await recordEvent(tx, actor, {
        projectId: key.projectId,
        action: ACTION[key.kind].grant,
        target: key.name,
        detail: { clusterId: key.clusterId },
      });
    })
    .catch((err: unknown) => {
      // The project or the cluster went since it was looked up.
      if (foreignKeyViolation(err)) throw new CloudNotFoundError('project or cluster', key.name);
      throw err;
    });
}

/**
 * Takes the grant back: no new instance may use it. Instances made with it keep what they
 * have (their NICs and disks are theirs until deleted).
 */
export async function revoke(sql: postgres.Sql, actor: Actor, key: GrantKey): Promise<void> {
  await sql.begin(async (tx) => {
    const gone = await tx`
      DELETE FROM cloud.grants
      WHERE kind = ${key.kind} AND cluster_id = ${key.clusterId} AND name = ${key.name}
        AND project_id IS NOT DISTINCT FROM ${key.projectId}::uuid`;
    if (gone.count === 0) throw new CloudNotFoundError(`${key.kind} grant`, key.name);
    await recordEvent(tx, actor, {
      projectId: key.projectId,
      action: ACTION[key.kind].revoke,
      target: key.name,
      detail: { clusterId: key.clusterId },
    });
  });
}

/** What a project may use, its own grants and the public ones, by cluster and name. */
export async function projectGrants(
  sql: postgres.Sql,
  projectId: string,
  kind?: GrantKind,
): Promise<Array<Grant & { kind: GrantKind }>> {
  const rows = await sql<
    { kind: GrantKind; cluster: string; name: string; owner: string; granted_at: Date }[]
  >`
    SELECT g.kind, c.name AS cluster, g.name, COALESCE(p.name, 'public') AS owner, g.granted_at
    FROM cloud.grants g
    JOIN cloud.clusters c ON c.id = g.cluster_id
    LEFT JOIN cloud.projects p ON p.id = g.project_id
    WHERE (g.project_id = ${projectId} OR g.project_id IS NULL)
      AND (${kind ?? null}::text IS NULL OR g.kind = ${kind ?? null})
    ORDER BY g.kind, c.name, g.name, g.project_id NULLS FIRST`;
  return rows.map((r) => ({
    kind: r.kind,
    cluster: r.cluster,
    name: r.name,
    owner: r.owner,
    grantedAt: r.granted_at,
  }));
}
