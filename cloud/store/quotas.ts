import type postgres from 'postgres';
import { CloudNotFoundError } from '../errors.ts';
import { NO_QUOTA, type Quota, type Usage } from '../quota.ts';
import { recordEvent, type Actor } from './events.ts';

type Queryable = postgres.Sql | postgres.TransactionSql;

export async function usageOf(sql: Queryable, projectId: string): Promise<Usage> {
  const [u] = await sql<
    { instances: string; vcpus: string; memory_mib: string; disk_gib: string; ips: string }[]
  >`
    SELECT count(*) AS instances, coalesce(sum(vcpus), 0) AS vcpus,
           coalesce(sum(memory_mib), 0) AS memory_mib, coalesce(sum(disk_gib), 0) AS disk_gib,
           coalesce(sum(ips), 0) AS ips
    FROM cloud.instances WHERE project_id = ${projectId} AND deleted_at IS NULL`;
  return {
    instances: Number(u!.instances),
    vcpus: Number(u!.vcpus),
    memoryMiB: Number(u!.memory_mib),
    diskGiB: Number(u!.disk_gib),
    ips: Number(u!.ips),
  };
}

export async function quotaOf(sql: Queryable, projectId: string): Promise<Quota> {
  const [q] = await sql<
    {
      instances: number | null;
      vcpus: number | null;
      memory_mib: string | null;
      disk_gib: string | null;
      ips: number | null;
    }[]
  >`SELECT instances, vcpus, memory_mib, disk_gib, ips FROM cloud.quotas WHERE project_id = ${projectId}`;
  if (!q) return NO_QUOTA;
  const n = (v: string | number | null) => (v === null ? null : Number(v));
  return {
    instances: q.instances,
    vcpus: q.vcpus,
    memoryMiB: n(q.memory_mib),
    diskGiB: n(q.disk_gib),
    ips: q.ips,
  };
}

/** A project's quota and what it uses now. */
export async function projectQuota(
  sql: postgres.Sql,
  projectId: string,
): Promise<{ quota: Quota; usage: Usage }> {
  return { quota: await quotaOf(sql, projectId), usage: await usageOf(sql, projectId) };
}

/**
 * Changes the limits named in `change` (null: no limit) and keeps the others, under the
 * project's row lock, so two admins setting different limits both count.
 */
export async function setQuota(
  sql: postgres.Sql,
  actor: Actor,
  projectId: string,
  change: Partial<Quota>,
): Promise<void> {
  await sql.begin(async (tx) => {
    const [held] = await tx`SELECT 1 FROM cloud.projects WHERE id = ${projectId} FOR UPDATE`;
    if (!held) throw new CloudNotFoundError('project', projectId);
    const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
    const quota: Quota = { ...(await quotaOf(tx, projectId)), ...given };
    await tx`
      INSERT INTO cloud.quotas (project_id, instances, vcpus, memory_mib, disk_gib, ips)
      VALUES (${projectId}, ${quota.instances}, ${quota.vcpus}, ${quota.memoryMiB},
              ${quota.diskGiB}, ${quota.ips})
      ON CONFLICT (project_id) DO UPDATE SET instances = excluded.instances,
        vcpus = excluded.vcpus, memory_mib = excluded.memory_mib,
        disk_gib = excluded.disk_gib, ips = excluded.ips`;
    await recordEvent(tx, actor, {
      projectId,
      action: 'quotas.set',
      target: projectId,
      detail: given,
    });
  });
}
