import type postgres from 'postgres';
import { recordEvent, type Actor } from './events.ts';

export interface NetworkGrant {
  cluster: string;
  network: string;
  grantedAt: Date;
}

/** Lets a project attach instances to a cluster's network (granting twice changes nothing). */
export async function grantNetwork(
  sql: postgres.Sql,
  actor: Actor,
  grant: { clusterId: string; network: string; projectId: string },
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO cloud.network_grants (cluster_id, network, project_id)
      VALUES (${grant.clusterId}, ${grant.network}, ${grant.projectId})
      ON CONFLICT DO NOTHING`;
    await recordEvent(tx, actor, {
      projectId: grant.projectId,
      action: 'networks.grant',
      target: grant.network,
      detail: { clusterId: grant.clusterId },
    });
  });
}

export async function projectNetworks(
  sql: postgres.Sql,
  projectId: string,
): Promise<NetworkGrant[]> {
  const rows = await sql<{ cluster: string; network: string; granted_at: Date }[]>`
    SELECT c.name AS cluster, g.network, g.granted_at
    FROM cloud.network_grants g JOIN cloud.clusters c ON c.id = g.cluster_id
    WHERE g.project_id = ${projectId} ORDER BY c.name, g.network`;
  return rows.map((r) => ({ cluster: r.cluster, network: r.network, grantedAt: r.granted_at }));
}
