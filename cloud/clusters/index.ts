import { outsidePrefixes } from '../../common/url-prefix.ts';
import type { CloudDeps } from '../api/context.ts';
import { CloudInputError, ClusterUnreachableError } from '../errors.ts';
import type { ClusterAddress } from '../store/clusters.ts';
import type { ClusterDriver } from './driver.ts';
import { VagothCluster } from './vagoth.ts';

/**
 * A vagoth cluster's URL as the cloud will call it: http(s), no credentials, under a prefix the
 * operator allows (VAGOTH_CLOUD_CLUSTER_URLS; none: no remote cluster at all), so a caller's
 * string never sends the cloud, and a cluster token with it, anywhere else.
 */
export function admitClusterUrl(text: string, allowed: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CloudInputError('url', 'must be an http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CloudInputError('url', 'must be an http(s) URL');
  }
  if (url.username !== '' || url.password !== '') {
    throw new CloudInputError('url', 'a URL with credentials is refused');
  }
  if (url.search !== '') throw new CloudInputError('url', 'a URL with a query is refused');
  const why = outsidePrefixes(url, allowed);
  if (why === 'no allowed prefix') {
    throw new CloudInputError('url', 'must start with a prefix of VAGOTH_CLOUD_CLUSTER_URLS');
  }
  if (why) throw new CloudInputError('url', why);
  return url.href.replace(/\/$/, '');
}

/**
 * The driver that reaches a recorded cluster. One the cloud cannot reach as recorded (its URL
 * no longer allowed, or no local cluster in this deployment) answers every call as a cluster
 * that does not answer: its instances show `unknown`, and the other clusters go on serving.
 */
export function clusterDriver(deps: CloudDeps, cluster: ClusterAddress): ClusterDriver {
  if (cluster.driver === 'local') {
    return deps.localCluster ?? silent(cluster.name, 'this deployment runs no local cluster');
  }
  // Checked again as it is used: the operator's list may have changed since it was registered.
  let url: string;
  try {
    url = admitClusterUrl(cluster.url!, deps.clusterUrls);
  } catch {
    return silent(cluster.name, 'its URL is no longer allowed');
  }
  // One client per cluster address, kept: its connections are reused from call to call.
  const known = drivers.get(deps) ?? new Map<string, VagothCluster>();
  drivers.set(deps, known);
  const key = JSON.stringify([cluster.id, cluster.name, url, cluster.token]);
  let driver = known.get(key);
  if (!driver) {
    for (const [k, d] of known) if (d.name === cluster.name) known.delete(k);
    driver = new VagothCluster({
      name: cluster.name,
      url,
      token: cluster.token!,
      timeoutMs: deps.clusterTimeoutMs,
    });
    known.set(key, driver);
  }
  return driver;
}

const drivers = new WeakMap<CloudDeps, Map<string, VagothCluster>>();

/** A cluster the cloud cannot call: every call fails as one that does not answer. */
function silent(name: string, why: string): ClusterDriver {
  const fail = () => Promise.reject(new ClusterUnreachableError(name, why));
  return {
    kind: 'local',
    capacity: fail,
    unplaceable: fail,
    createVm: fail,
    getVm: fail,
    getVms: fail,
    operate: fail,
    operation: fail,
  };
}
