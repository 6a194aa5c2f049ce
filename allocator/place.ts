import {
  DRIVER_FEATURES,
  type DriverFeature,
  type HostDriver,
  type HostState,
} from '../registry/types.ts';

export type PlacementPolicy = 'spread' | 'pack';

export interface Resources {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
}

/** What the allocator knows of one host: a snapshot, taken without locks. */
export interface HostView {
  name: string;
  state: HostState;
  driver: HostDriver;
  tags: Record<string, string>;
  /** Room left, with the host's overcommit ratios already applied. */
  free: Resources;
  cpuRatio: number;
  /** Anti-affinity groups that already have a VM on this host. */
  antiAffinity: string[];
}

export interface PlacementRequest extends Resources {
  /** Vagoth's `hint`: only this host may take the VM. */
  host?: string | undefined;
  /** Tags the host must carry, every one with this value. */
  tags?: Record<string, string> | undefined;
  /** No two VMs of one of these groups on the same host. */
  antiAffinity?: string[] | undefined;
  /** All VMs of one of these groups on the same host. */
  affinity?: string[] | undefined;
  policy?: PlacementPolicy | undefined;
  /** What the VM needs of the host's driver (a seed, a kernel boot); none by default. */
  features?: DriverFeature[] | undefined;
}

/** The drivers that have every feature asked for: all of them when none is. */
export function driversWith(features: readonly DriverFeature[]): HostDriver[] {
  return (Object.keys(DRIVER_FEATURES) as HostDriver[]).filter((d) =>
    features.every((f) => DRIVER_FEATURES[d].includes(f)),
  );
}

export interface PlacementSnapshot {
  hosts: HostView[];
  /** For each affinity group that already has VMs: the host they are on. */
  affinityHosts: Record<string, string>;
}

export interface PlacementPlan {
  /** Hosts that can take the VM, best first by the request's policy. */
  candidates: string[];
  /** How many candidates, from the first, the weigher cannot tell apart (0 when none fit). */
  leaders: number;
  /** Every host that cannot, with the first reason found. */
  rejected: Record<string, string>;
}

type Filter = (host: HostView, req: PlacementRequest, snap: PlacementSnapshot) => string | null;

// Nomad's feasibility checks, cheapest first; each names why a host fails.
const FILTERS: Filter[] = [
  (h, r) => (r.host !== undefined && h.name !== r.host ? 'not the requested host' : null),
  (h) => (h.state !== 'active' ? `host is ${h.state}` : null),
  (h, r) => {
    const lacking = (r.features ?? []).find((f) => !DRIVER_FEATURES[h.driver].includes(f));
    return lacking ? `a ${h.driver} host gives no ${lacking}` : null;
  },
  (h, r) =>
    r.memoryMiB > h.free.memoryMiB ? `not enough memory (${h.free.memoryMiB} MiB free)` : null,
  (h, r) =>
    r.vcpus > h.free.vcpus
      ? `not enough vCPUs (${h.free.vcpus} free at ratio ${h.cpuRatio})`
      : null,
  (h, r) => (r.diskGiB > h.free.diskGiB ? `not enough disk (${h.free.diskGiB} GiB free)` : null),
  (h, r) => {
    const missing = Object.entries(r.tags ?? {}).find(([k, v]) => h.tags[k] !== v);
    return missing ? `missing tag ${missing[0]}=${missing[1]}` : null;
  },
  (h, r) => {
    const clash = (r.antiAffinity ?? []).find((g) => h.antiAffinity.includes(g));
    return clash ? `anti-affinity group ${clash} already on this host` : null;
  },
  (h, r, s) => {
    // Own properties only: a group may be called `constructor` like any other.
    const on = (g: string) => (Object.hasOwn(s.affinityHosts, g) ? s.affinityHosts[g] : undefined);
    const elsewhere = (r.affinity ?? []).find((g) => on(g) !== undefined && on(g) !== h.name);
    return elsewhere ? `affinity group ${elsewhere} is on ${s.affinityHosts[elsewhere]}` : null;
  },
];

const byName = (a: HostView, b: HostView) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

// Weighers: spread keeps the most room everywhere, pack fills hosts before starting others.
const WEIGH: Record<PlacementPolicy, (a: HostView, b: HostView) => number> = {
  spread: (a, b) => b.free.memoryMiB - a.free.memoryMiB || b.free.vcpus - a.free.vcpus,
  pack: (a, b) => a.free.memoryMiB - b.free.memoryMiB || a.free.vcpus - b.free.vcpus,
};

/** Pure: decides where a VM may go from a snapshot; claims nothing. */
export function planPlacement(
  snapshot: PlacementSnapshot,
  request: PlacementRequest,
): PlacementPlan {
  const rejected: Record<string, string> = {};
  const fits: HostView[] = [];
  for (const host of snapshot.hosts) {
    let why: string | null = null;
    for (const filter of FILTERS) {
      why = filter(host, request, snapshot);
      if (why !== null) break;
    }
    if (why === null) fits.push(host);
    // With a hint, the other hosts were never in question: no reason to list them.
    else if (request.host === undefined || host.name === request.host) rejected[host.name] = why;
  }
  if (request.host !== undefined && !snapshot.hosts.some((h) => h.name === request.host)) {
    rejected[request.host] = 'no such host';
  }
  const weigh = WEIGH[request.policy ?? 'spread'];
  fits.sort((a, b) => weigh(a, b) || byName(a, b));
  const leaders = fits.findIndex((h) => weigh(fits[0]!, h) !== 0);
  return {
    candidates: fits.map((h) => h.name),
    leaders: leaders === -1 ? fits.length : leaders,
    rejected,
  };
}

/**
 * The order in which to try the candidates: the leaders (equally good by the weigher) in
 * random order, then the rest. Concurrent placements working from the same snapshot would
 * otherwise all queue on one host's row lock (Nomad shuffles its feasible nodes for the same
 * reason); shuffling only ties keeps the policy's choice exact.
 */
export function claimOrder(
  plan: Pick<PlacementPlan, 'candidates' | 'leaders'>,
  random: () => number,
): string[] {
  const width = Math.min(plan.leaders, plan.candidates.length);
  const top = plan.candidates.slice(0, width);
  for (let i = top.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [top[i], top[j]] = [top[j]!, top[i]!];
  }
  return [...top, ...plan.candidates.slice(width)];
}
