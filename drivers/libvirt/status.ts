import { constants as C, type Connection, type Domain } from '../../native/libvirt/index.ts';
import type { DomainInfo, HostStatus } from '../driver.ts';
import { describe, isActive } from './domains.ts';
import { hasCode } from './errors.ts';

const MiB = 1024 * 1024;

/** A domain undefined between the listing and its description is simply no longer there. */
async function describeIfStill(domain: Domain): Promise<DomainInfo | null> {
  try {
    return await describe(domain);
  } catch (err) {
    if (hasCode(err, C.VIR_ERR_NO_DOMAIN)) return null;
    throw err;
  } finally {
    domain.free();
  }
}

export async function hostStatus(conn: Connection, simulated: boolean): Promise<HostStatus> {
  const [node, free, listed] = await Promise.all([
    conn.nodeGetInfo(),
    // A test:///<file> host has no NUMA cells: libvirt fails to report any free memory there.
    conn.nodeFreeMemory().catch((err: unknown) => {
      if (simulated) return null;
      throw err;
    }),
    conn.listAllDomains(),
  ]);
  const domains = (await Promise.all(listed.map(describeIfStill))).filter(
    (d): d is DomainInfo => d !== null,
  );
  const capacity = { vcpus: node.cpus, memoryMiB: Math.floor(node.memoryKiB / 1024) };
  let freeMemoryMiB = Math.floor((free?.bytes ?? 0) / MiB);
  // There, free memory is what the running domains leave, as a real host would show it.
  if (!free || (simulated && free.bytes === 0)) {
    const used = domains.filter((d) => isActive(d.state)).reduce((n, d) => n + d.memoryMiB, 0);
    freeMemoryMiB = Math.max(0, capacity.memoryMiB - used);
  }
  // libvirt has no load average API; the host's /proc/loadavg is out of its reach.
  return { capacity, freeMemoryMiB, load: null, domains };
}
