import type { Host } from '../registry/types.ts';

export interface PlacementRequest {
  vcpus: number;
  memoryMiB: number;
  /** Vagoth's `hint`: only this host may take the VM. */
  host?: string | undefined;
}

export interface PlacementPlan {
  /** Hosts that can take the VM, best first (spread: most free memory first). */
  candidates: string[];
  /** Every host that cannot, with the reason. */
  rejected: Record<string, string>;
}

function rejection(host: Host, request: PlacementRequest): string | null {
  if (request.host !== undefined && host.name !== request.host) return 'not the requested host';
  if (host.state !== 'active') return `host is ${host.state}`;
  const freeMem = host.capacity.memoryMiB - host.allocated.memoryMiB;
  if (request.memoryMiB > freeMem) return `not enough memory (${freeMem} MiB free)`;
  const freeCpu = host.capacity.vcpus - host.allocated.vcpus;
  if (request.vcpus > freeCpu) return `not enough vCPUs (${freeCpu} free)`;
  return null;
}

/** Pure: decides where a VM may go from a snapshot of hosts; claims nothing. */
export function planPlacement(hosts: readonly Host[], request: PlacementRequest): PlacementPlan {
  const rejected: Record<string, string> = {};
  const fits: Host[] = [];
  for (const host of hosts) {
    const why = rejection(host, request);
    if (why === null) fits.push(host);
    else if (request.host === undefined || host.name === request.host) rejected[host.name] = why;
  }
  if (request.host !== undefined && !hosts.some((h) => h.name === request.host)) {
    rejected[request.host] = 'no such host';
  }
  const free = (h: Host) => h.capacity.memoryMiB - h.allocated.memoryMiB;
  fits.sort((a, b) => free(b) - free(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { candidates: fits.map((h) => h.name), rejected };
}
