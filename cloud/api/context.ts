import type postgres from 'postgres';
import type { Caller, Target } from '../authorize.ts';
import type { ClusterDriver } from '../clusters/driver.ts';
import { getProject } from '../store/projects.ts';
import { listClusters, type ClusterAddress } from '../store/clusters.ts';
import type { Project } from '../store/projects.ts';
import { TtlCache } from '../../common/ttl-cache.ts';

export interface CloudDeps {
  sql: postgres.Sql;
  /** The cluster controller of this deployment, for the `local` driver; null: none here. */
  localCluster: ClusterDriver | null;
  /** URL prefixes a vagoth cluster's URL must start with (VAGOTH_CLOUD_CLUSTER_URLS). */
  clusterUrls: readonly string[];
  /** How long one call to a vagoth cluster may take. */
  clusterTimeoutMs: number;
  /** Who each token stands for and each project name's record, remembered a few seconds. */
  caches: CloudCaches;
}

export interface CloudCaches {
  /** By the SHA-256 of the token. */
  callers: TtlCache<Caller | null>;
  projects: TtlCache<Project | null>;
  /** Every cluster, with what reaches it (one key). */
  clusters: TtlCache<ClusterAddress[]>;
}

/** What the cloud remembers for `ttlMs` (VAGOTH_TOKEN_CACHE_MS; 0: nothing). */
export function cloudCaches(ttlMs: number): CloudCaches {
  return {
    callers: new TtlCache(ttlMs),
    projects: new TtlCache(ttlMs),
    clusters: new TtlCache(ttlMs),
  };
}

/** The clusters, as the cloud remembers them for a few seconds (forgotten on any change). */
export function knownClusters(ctx: CloudContext): Promise<ClusterAddress[]> {
  return ctx.caches.clusters.get('all', () => listClusters(ctx.sql));
}

export type CloudContext = CloudDeps & { authorization: string | undefined };

/** After the token check: who is calling, and the project or user the rule was about. */
export type AuthedContext = CloudContext & { caller: Caller; target: Target };

/** Pure: tests build the same context the HTTP adapter does. */
export function createCloudContext(
  deps: CloudDeps,
  authorization: string | undefined,
): CloudContext {
  return { ...deps, authorization };
}

/**
 * The project a call names, as the token check found it (no second look-up), or as the store
 * has it when the check looked at another one.
 */
export async function projectOf(
  ctx: AuthedContext,
  name: string,
): Promise<{ id: string; name: string }> {
  const found = ctx.target.project;
  if (found && found.id !== null && found.name === name) return { id: found.id, name };
  return getProject(ctx.sql, name);
}

/** Who a change is recorded as made by. */
export function actorOf(ctx: AuthedContext): { userId: string; tokenId: string } {
  return { userId: ctx.caller.userId, tokenId: ctx.caller.tokenId };
}
