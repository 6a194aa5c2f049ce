/** Pure: which of the cloud's clusters to try for a new instance, in order. */

export interface ClusterChoice {
  name: string;
  region: string;
  draining: boolean;
  /** Memory free on its active hosts; null when it did not answer. */
  freeMemoryMiB: number | null;
}

export interface ClusterRequest {
  /** This cluster and no other. */
  cluster?: string | undefined;
  /** Among this region's clusters. */
  region?: string | undefined;
}

/**
 * The clusters to ask, most free memory first (each is then asked whether it places the
 * instance, and the first that does takes it), and why each other one is not asked.
 */
export function clusterOrder(
  clusters: readonly ClusterChoice[],
  request: ClusterRequest,
): { order: string[]; rejected: Record<string, string> } {
  const rejected: Record<string, string> = {};
  const open: ClusterChoice[] = [];
  for (const c of clusters) {
    if (request.cluster !== undefined && c.name !== request.cluster) continue;
    if (request.region !== undefined && c.region !== request.region) continue;
    if (c.draining) rejected[c.name] = 'draining';
    else if (c.freeMemoryMiB === null) rejected[c.name] = 'not answering';
    else open.push(c);
  }
  open.sort(
    (a, b) =>
      b.freeMemoryMiB! - a.freeMemoryMiB! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return { order: open.map((c) => c.name), rejected };
}
