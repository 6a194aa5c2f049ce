import { clusterDriver } from '../clusters/index.ts';
import type { ClusterDriver } from '../clusters/driver.ts';
import { CloudNotFoundError, CloudPreconditionError } from '../errors.ts';
import { clusterOrder } from '../placement.ts';
import type { ClusterAddress } from '../store/clusters.ts';
import { projectGrants, type GrantKind } from '../store/grants.ts';
import { knownClusters, type AuthedContext } from './context.ts';

/**
 * An instance's placement as its cluster takes it: the project's anti-affinity groups named
 * `<project>.<group>` there (as its VMs are `<project>.<name>`-like: see vmNameOf), so one
 * project's group never meets another's; what only the cloud reads left out.
 */
function clusterPlacement(
  project: { name: string },
  placement: {
    tags?: Record<string, string> | undefined;
    policy?: 'spread' | 'pack' | undefined;
    antiAffinity?: string[] | undefined;
  },
) {
  const { tags, policy, antiAffinity } = placement;
  return {
    ...(tags === undefined ? {} : { tags }),
    ...(policy === undefined ? {} : { policy }),
    ...(antiAffinity === undefined
      ? {}
      : { antiAffinity: antiAffinity.map((g) => `${project.name}.${g}`) }),
  };
}

/** Picks the cluster for a new instance, or says why none takes it. */
export async function chooseCluster(
  ctx: AuthedContext,
  project: { id: string; name: string },
  input: {
    cluster?: string | undefined;
    region?: string | undefined;
    image: string;
    vcpus: number;
    memoryMiB: number;
    diskGiB: number;
    nics: { network: string }[];
    placement: {
      tags?: Record<string, string> | undefined;
      policy?: 'spread' | 'pack' | undefined;
      antiAffinity?: string[] | undefined;
      excludeClusters?: string[] | undefined;
    };
  },
): Promise<{
  cluster: ClusterAddress;
  driver: ClusterDriver;
  /** The instance's placement as that cluster takes it (clusterPlacement). */
  placement: ReturnType<typeof clusterPlacement>;
}> {
  const all = await knownClusters(ctx);
  if (input.cluster !== undefined && !all.some((c) => c.name === input.cluster)) {
    throw new CloudNotFoundError('cluster', input.cluster);
  }
  // What the instance uses of a cluster's: a network or image the project was not granted (nor
  // published to all), on any cluster in reach, is not there for it.
  const grants = await projectGrants(ctx.sql, project.id);
  const needs: Array<{ kind: GrantKind; name: string }> = [
    { kind: 'image', name: input.image },
    ...input.nics.map((n) => ({ kind: 'network' as const, name: n.network })),
  ];
  const granted = (cluster: string, need: { kind: GrantKind; name: string }) =>
    grants.some((g) => g.cluster === cluster && g.kind === need.kind && g.name === need.name);
  const inScope = all.filter(
    (c) =>
      (input.cluster === undefined || c.name === input.cluster) &&
      (input.region === undefined || c.region === input.region),
  );
  for (const need of needs) {
    if (!inScope.some((c) => granted(c.name, need))) {
      throw new CloudNotFoundError(need.kind, need.name);
    }
  }
  const rejected: Record<string, string> = {};
  const excluded = new Set(input.placement.excludeClusters ?? []);
  const candidates = inScope.filter((c) => {
    if (excluded.has(c.name)) {
      rejected[c.name] = 'excluded by the request';
      return false;
    }
    const missing = needs.find((n) => !granted(c.name, n));
    if (missing) rejected[c.name] = `${missing.kind} ${missing.name} not granted there`;
    return !missing;
  });
  const drivers = new Map(candidates.map((c) => [c.name, clusterDriver(ctx, c)]));
  const choices = await Promise.all(
    candidates.map(async (c) => ({
      name: c.name,
      region: c.region,
      draining: c.draining,
      freeMemoryMiB: await drivers
        .get(c.name)!
        .capacity()
        .then(
          (cap) => cap.free.memoryMiB,
          () => null,
        ),
    })),
  );
  const plan = clusterOrder(choices, input);
  Object.assign(rejected, plan.rejected);
  const shape = {
    vcpus: input.vcpus,
    memoryMiB: input.memoryMiB,
    diskGiB: input.diskGiB,
    placement: clusterPlacement(project, input.placement),
  };
  for (const name of plan.order) {
    const driver = drivers.get(name)!;
    const why = await driver.unplaceable(shape).catch(() => 'it did not answer');
    if (why === null) {
      return {
        cluster: candidates.find((c) => c.name === name)!,
        driver,
        placement: shape.placement,
      };
    }
    rejected[name] = `no host there takes it: ${why}`;
  }
  const why = Object.entries(rejected).map(([c, r]) => `${c}: ${r}`);
  throw new CloudPreconditionError(
    `no cluster can take it${why.length > 0 ? ` (${why.join('; ')})` : ' (no clusters)'}`,
  );
}
