import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from '../../api/router.ts';

/** A host as the cluster's API answers it (hosts.list): the cloud reads nothing else of it. */
export type ClusterHost = inferRouterOutputs<AppRouter>['hosts']['list'][number];

type In = inferRouterInputs<AppRouter>;
type Out = inferRouterOutputs<AppRouter>;

/** A VM as its cluster's API takes and answers it. */
export type ClusterVmInput = In['vms']['create'];
export type ClusterVm = Out['vms']['get'];
/** An operation of the cluster's (a workflow, or an update of one), with its Temporal UI link. */
export type ClusterOperation = Out['vms']['create']['operation'];
export type ClusterOperationRef = In['operations']['get'];
export type ClusterOperationDetail = Out['operations']['get'];
/** Where the cluster would put a VM of this shape, and why not elsewhere. */
export type ClusterPlacementInput = In['placement']['explain'];

/** The operations on a VM the cloud passes on as they are. */
export type VmVerb = 'start' | 'stop' | 'shutdown' | 'reboot' | 'reprovision' | 'decommission';

export interface Room {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
}

/** What a cluster offers, summed over its hosts; `free` counts only hosts that take VMs. */
export interface ClusterCapacity {
  hosts: number;
  activeHosts: number;
  vms: number;
  /** What its hosts offer (overcommit applied), and what is left on its active ones. */
  offered: Room;
  free: Room;
}

/**
 * How the cloud reaches a cluster controller, the layer below it: through its API, never its
 * tables, so a cluster can run in this process (`local`) or in another deployment (`vagoth`,
 * over HTTP with a cluster token).
 */
export interface ClusterDriver {
  readonly kind: 'local' | 'vagoth';
  /** The cluster's hosts and what they have left. */
  capacity(): Promise<ClusterCapacity>;
  /** Whether a VM of this shape has a host there now (claims nothing). */
  /** Null when a host would take a VM of this shape; else why none would, in short. */
  unplaceable(shape: ClusterPlacementInput): Promise<string | null>;
  /** Starts a VM's create: answers once its name and addresses are claimed. */
  createVm(input: ClusterVmInput): Promise<{ vm: ClusterVm; operation: ClusterOperation }>;
  /** The VM, or null when the cluster has none of that name. */
  getVm(name: string): Promise<ClusterVm | null>;
  /** Those of the named VMs (at most 500) the cluster has, in one call. */
  getVms(names: readonly string[]): Promise<ClusterVm[]>;
  operate(name: string, verb: VmVerb): Promise<ClusterOperation>;
  operation(ref: ClusterOperationRef): Promise<ClusterOperationDetail>;
}

/**
 * Pure: why no host takes a VM, from the allocator's reasons by host: each kind of reason once,
 * with how many hosts gave it, the commonest first, at most three. No host is named and no
 * figure given (`not enough memory`, not how much is free): the hosts are shared by every
 * project, and what is free on them is no project's to learn.
 */
export function whyUnplaceable(rejected: Record<string, string>): string {
  const count = new Map<string, number>();
  for (const said of Object.values(rejected)) {
    const why = said.replace(/\s*\([^)]*\)/g, '');
    count.set(why, (count.get(why) ?? 0) + 1);
  }
  if (count.size === 0) return 'it has no host';
  const top = [...count].sort((a, b) => b[1] - a[1]);
  const said = top.slice(0, 3).map(([why, n]) => `${why} (${n} host${n === 1 ? '' : 's'})`);
  if (top.length > 3) said.push(`${top.length - 3} more reasons`);
  return said.join(', ');
}

/** Pure: a cluster's capacity from its hosts. */
export function sumCapacity(hosts: readonly ClusterHost[]): ClusterCapacity {
  const zero = (): Room => ({ vcpus: 0, memoryMiB: 0, diskGiB: 0 });
  const total: ClusterCapacity = {
    hosts: hosts.length,
    activeHosts: 0,
    vms: 0,
    offered: zero(),
    free: zero(),
  };
  for (const h of hosts) {
    total.vms += h.vms;
    total.offered.vcpus += Math.floor(h.capacity.vcpus * h.ratios.cpu);
    total.offered.memoryMiB += Math.floor(h.capacity.memoryMiB * h.ratios.memory);
    total.offered.diskGiB += h.capacity.diskGiB;
    if (h.state !== 'active') continue;
    total.activeHosts += 1;
    total.free.vcpus += h.free.vcpus;
    total.free.memoryMiB += h.free.memoryMiB;
    total.free.diskGiB += h.free.diskGiB;
  }
  return total;
}
