import type postgres from 'postgres';
import type { Caller } from '../authorize.ts';
import type { ClusterDriver } from '../clusters/driver.ts';

export interface CloudDeps {
  sql: postgres.Sql;
  /** The cluster controller of this deployment, for the `local` driver; null: none here. */
  localCluster: ClusterDriver | null;
  /** URL prefixes a vagoth cluster's URL must start with (VAGOTH_CLOUD_CLUSTER_URLS). */
  clusterUrls: readonly string[];
  /** How long one call to a vagoth cluster may take. */
  clusterTimeoutMs: number;
}

export type CloudContext = CloudDeps & { authorization: string | undefined };

/** After the token check: who is calling. */
export type AuthedContext = CloudContext & { caller: Caller };

/** Pure: tests build the same context the HTTP adapter does. */
export function createCloudContext(
  deps: CloudDeps,
  authorization: string | undefined,
): CloudContext {
  return { ...deps, authorization };
}

/** Who a change is recorded as made by. */
export function actorOf(ctx: AuthedContext): { userId: string; tokenId: string } {
  return { userId: ctx.caller.userId, tokenId: ctx.caller.tokenId };
}
