import type { HostAddress } from '../registry/types.ts';
import type { Driver } from './driver.ts';
import { LibvirtDriver } from './libvirt/libvirt-driver.ts';

export * from './driver.ts';
export { DriverPool } from './pool.ts';

/** The one switch from a host's `driver` field to its implementation. */
export function createDriver(host: HostAddress): Driver {
  switch (host.driver) {
    case 'libvirt':
      return new LibvirtDriver({ uri: host.uri });
  }
}
