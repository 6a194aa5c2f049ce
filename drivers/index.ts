import type { HostAddress } from '../registry/types.ts';
import type { Driver, DriverFactory } from './driver.ts';
import { createGeatsDriver, type GeatsOptions } from './geats/index.ts';
import { LibvirtDriver } from './libvirt/libvirt-driver.ts';
import type { WipeMethod } from './libvirt/volumes.ts';

export * from './driver.ts';
export { DriverPool } from './pool.ts';
export type { GeatsOptions, SshOptions } from './geats/index.ts';
export type { WipeMethod };

/** What the drivers need from the configuration (config.ts's `drivers`). */
export interface DriversOptions {
  libvirt: {
    /** The storage pools vagoth may create volumes in (the first) and wipe volumes of. */
    pools: string[];
    /** How deprovision zeroes volumes (LibvirtDriverOptions.wipe). */
    wipe: WipeMethod;
    /** Cap on streamed zeros, MiB/s; 0: none. */
    wipeMiBPerSecond: number;
  };
  geats: GeatsOptions;
}

/** Defaults for callers without a configuration (tests); a worker passes config.ts's. */
export const DEFAULT_DRIVERS_OPTIONS: DriversOptions = {
  libvirt: { pools: ['vagoth'], wipe: 'libvirt', wipeMiBPerSecond: 0 },
  geats: {
    timeoutMs: 15_000,
    longTimeoutMs: 600_000,
    vmType: 'kvm',
    storageType: 'local',
    ssh: { knownHostsFile: '/dev/null', connectTimeoutMs: 10_000 },
  },
};

/** The one switch from a host's `driver` field to its implementation. */
export function createDriverFactory(options: DriversOptions): DriverFactory {
  return (host: HostAddress): Driver => {
    switch (host.driver) {
      case 'libvirt':
        return new LibvirtDriver({
          uri: host.uri,
          pools: options.libvirt.pools,
          wipe: options.libvirt.wipe,
          wipeMiBPerSecond: options.libvirt.wipeMiBPerSecond,
        });
      case 'geats':
        return createGeatsDriver(host.uri, options.geats);
    }
  };
}

/** A factory with the defaults: geats+ssh hosts need a configured key, so use createDriverFactory. */
export const createDriver: DriverFactory = createDriverFactory(DEFAULT_DRIVERS_OPTIONS);
