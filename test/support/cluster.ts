import type { HostStatus } from '../../drivers/driver.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { startPrivateLibvirtd, type PrivateLibvirtd } from './private-libvirtd.ts';

export interface ClusterHost {
  name: string;
  /** How vagoth reaches it: libvirt's test driver served by this host's own daemon. */
  uri: string;
  daemon: PrivateLibvirtd;
  /** The test's own view of the host, on a connection of its own. */
  driver: LibvirtDriver;
}

export interface Cluster {
  hosts: ClusterHost[];
  /** What each host holds now, by host name, as the hypervisors (not the registry) say. */
  statuses(): Promise<Map<string, HostStatus>>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  hosts: number;
  /** Host names are `<prefix>-1`, `<prefix>-2`, ... */
  prefix?: string;
}

/**
 * Simulated hypervisors that outlive any worker: one libvirtd per host, each serving libvirt's
 * test driver on its own unix socket. The test driver forgets a host when its last connection
 * closes, so each host's driver here opens and keeps one connection for the cluster's life:
 * a worker killed with its connections cannot take the host's domains with it.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const prefix = options.prefix ?? 'hv';
  const hosts: ClusterHost[] = [];
  const close = async () => {
    await Promise.allSettled(hosts.map((h) => h.driver.close()));
    await Promise.allSettled(hosts.map((h) => h.daemon.stop()));
  };
  try {
    // One at a time: daemons starting together on two cores time out waiting for each other.
    for (let i = 1; i <= options.hosts; i++) {
      const daemon = await startPrivateLibvirtd();
      const uri = daemon.uri('test');
      const driver = new LibvirtDriver({ uri });
      hosts.push({ name: `${prefix}-${i}`, uri, daemon, driver });
      await driver.status(); // opens the connection that keeps the host alive
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    hosts,
    async statuses() {
      const all = await Promise.all(
        hosts.map(async (h) => [h.name, await h.driver.status()] as const),
      );
      return new Map(all);
    },
    close,
  };
}
