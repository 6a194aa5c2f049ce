import type postgres from 'postgres';
import { CloudCredentialsError } from './errors.ts';
import { queueRevocations } from './revocations.ts';
import { cloudsNamed, groupsOf } from './placements.ts';
import type { Placement } from './store.ts';

/**
 * A service's tokens in the other clouds its placements name: minted there from a member's,
 * narrowed to the project there, kept here (never answered) until no placement names the cloud
 * and no member is left in it; then queued to be revoked (services/revocations.ts).
 */
export interface CloudToken {
  cloud: string;
  project: string;
  token: string;
  tokenId: string;
  /** The URL of the cloud that minted it: it is sent nowhere else. Null: not recorded (older). */
  url?: string | null;
}

type Queryable = postgres.Sql | postgres.TransactionSql;

interface Row {
  cloud: string;
  project: string;
  token: string;
  token_id: string;
  url: string | null;
}

const tokenOf = (r: Row): CloudToken => ({
  cloud: r.cloud,
  project: r.project,
  token: r.token,
  tokenId: r.token_id,
  url: r.url,
});

/** The service's tokens in other clouds: for its reconciles only. */
export async function cloudTokensOf(sql: Queryable, serviceId: string): Promise<CloudToken[]> {
  const rows = await sql<Row[]>`
    SELECT cloud, project, token, token_id, url FROM services.cloud_tokens
    WHERE service_id = ${serviceId} ORDER BY cloud`;
  return rows.map(tokenOf);
}

/** The other clouds a service is in and its project in each, as a caller may see them. */
export async function serviceClouds(sql: Queryable, serviceId: string) {
  return sql<{ cloud: string; project: string }[]>`
    SELECT cloud, project FROM services.cloud_tokens
    WHERE service_id = ${serviceId} ORDER BY cloud`;
}

/**
 * The other clouds where a change makes the service do more than it was declared to: a new
 * template rolls out (every cloud its placements name), or a cloud's placement gains replicas
 * or is new. The service acts there with a token minted from another's credentials, so such a
 * change needs the caller's own there, as a create does; one that only scales a cloud down or
 * leaves it, or changes nothing there, does not.
 */
export function cloudsActedMoreIn(
  was: { placements: readonly Placement[] | null; revision: string },
  next: { placements: readonly Placement[] | null; revision: string },
): string[] {
  const clouds = cloudsNamed(next.placements);
  if (next.revision !== was.revision) return clouds;
  const groups = (placements: readonly Placement[] | null) =>
    groupsOf({ desired: { replicas: 0 }, placements });
  const before = new Map(groups(was.placements).map((g) => [g.key, g.replicas] as const));
  const more = new Set(
    groups(next.placements)
      .filter((g) => g.cloud !== null && g.replicas > (before.get(g.key) ?? 0))
      .map((g) => g.cloud),
  );
  return clouds.filter((c) => more.has(c));
}

/**
 * Within a create's or an update's transaction (the service's row locked): checks that every
 * other cloud `placements` name has a token of the service's, kept or given now, that a given
 * one is for the project its instances there are in, and records the given ones. The tokens
 * they take the place of are queued to be revoked, in the same transaction: answers their
 * records, to try once it is committed. `actedMoreIn`: clouds where the change makes the
 * service do more (cloudsActedMoreIn), which need the caller's credentials given now even
 * where a token is kept.
 */
export async function putCloudTokens(
  tx: postgres.TransactionSql,
  service: { id: string; label: string },
  placements: readonly Placement[] | null,
  given: readonly CloudToken[],
  actedMoreIn: readonly string[] = [],
): Promise<string[]> {
  const serviceId = service.id;
  const held = new Map((await cloudTokensOf(tx, serviceId)).map((t) => [t.cloud, t] as const));
  for (const cloud of actedMoreIn) {
    if (!given.some((g) => g.cloud === cloud)) {
      throw new CloudCredentialsError(
        `clouds.${cloud}`,
        'BAD_REQUEST',
        `is required: this change makes the service do more in cloud ${cloud} (a new template, ` +
          `more replicas or a new placement there), which the caller's own { token, project ` +
          `} there must allow`,
      );
    }
  }
  for (const cloud of cloudsNamed(placements)) {
    const kept = held.get(cloud);
    if (!kept && !given.some((g) => g.cloud === cloud)) {
      throw new CloudCredentialsError(
        `clouds.${cloud}`,
        'BAD_REQUEST',
        `is required: a placement names cloud ${cloud}, where the service has no token`,
      );
    }
  }
  const replaced: CloudToken[] = [];
  for (const g of given) {
    const kept = held.get(g.cloud);
    if (kept && kept.project !== g.project) {
      throw new CloudCredentialsError(
        `clouds.${g.cloud}.project`,
        'BAD_REQUEST',
        `the service's instances in cloud ${g.cloud} are in project ${kept.project}`,
      );
    }
    if (kept) replaced.push(kept);
    await tx`
      INSERT INTO services.cloud_tokens (service_id, cloud, project, token, token_id, url)
      VALUES (${serviceId}, ${g.cloud}, ${g.project}, ${g.token}, ${g.tokenId}, ${g.url ?? null})
      ON CONFLICT (service_id, cloud) DO UPDATE
      SET project = excluded.project, token = excluded.token, token_id = excluded.token_id,
        url = excluded.url`;
  }
  return queueRevocations(tx, service.label, replaced);
}

/**
 * The tokens of clouds the service no longer uses (no placement names the cloud, or the
 * service is being deleted, and no member is left there): taken from the service, under its
 * lock, so an update naming the cloud again must bring credentials, and queued to be revoked
 * in the same transaction. Answers their records in the queue.
 */
export async function retireUnusedTokens(sql: postgres.Sql, serviceId: string) {
  return sql.begin(async (tx) => {
    const [service] = await tx<
      { placements: Placement[] | null; deleting: boolean; label: string }[]
    >`
      SELECT placements, deleting_at IS NOT NULL AS deleting, project || '/' || name AS label
      FROM services.services WHERE id = ${serviceId} FOR UPDATE`;
    if (!service) return [];
    const named = service.deleting ? [] : cloudsNamed(service.placements);
    const unused = await tx<Row[]>`
      DELETE FROM services.cloud_tokens t
      WHERE t.service_id = ${serviceId}
        AND NOT (t.cloud = ANY(${named}::text[]))
        AND NOT EXISTS (SELECT 1 FROM services.members m
                        WHERE m.service_id = t.service_id AND m.cloud = t.cloud)
      RETURNING cloud, project, token, token_id, url`;
    return queueRevocations(tx, service.label, unused.map(tokenOf));
  });
}
