import type { HostAddress } from '../registry/types.ts';
import { DriverError, type Driver, type DriverFactory } from './driver.ts';
import { createGeatsDriver, GeatsDriver, type GeatsOptions } from './geats/index.ts';
import { checkHostUri, CLOSED_HOST_URIS, HostUriError, type HostUriPolicy } from './host-uri.ts';
import { LibvirtDriver } from './libvirt/libvirt-driver.ts';
import type { WipeMethod } from './libvirt/wipe.ts';

export * from './driver.ts';
export { DriverPool } from './pool.ts';
export type { GeatsOptions, SshOptions } from './geats/index.ts';
export type { WipeMethod };
export { CLOSED_HOST_URIS, HostUriError, checkHostUri, type HostUriPolicy } from './host-uri.ts';

/** What the drivers need from the configuration (config.ts's `drivers`). */
export interface DriversOptions {
  /** What a host's URI may make this machine open or run. */
  hostUris: HostUriPolicy;
  libvirt: {
    /** The storage pools vagoth may create volumes in (the first) and wipe volumes of. */
    pools: string[];
    /** Domain type of qemu hosts' domains (`kvm` by default; `qemu` where there is no KVM). */
    domainType?: 'kvm' | 'qemu';
    /** Cap on a cold move's disk copy, MiB/s; 0 or unset: none. */
    copyMiBPerSecond?: number;
    /** Those of `pools` every host reaches as the same storage: a move leaves their volumes be. */
    sharedPools?: string[];
    /** How deprovision zeroes volumes (LibvirtDriverOptions.wipe). */
    wipe: WipeMethod;
    /** Cap on streamed zeros, MiB/s; 0: none. */
    wipeMiBPerSecond: number;
    /** Where each host logs every guest's serial console, as `<dir>/<vm id>.log`. */
    consoleLogDir?: string;
  };
  geats: GeatsOptions;
}

/** Defaults for callers without a configuration (tests); a worker passes config.ts's. */
export const DEFAULT_DRIVERS_OPTIONS: DriversOptions = {
  hostUris: CLOSED_HOST_URIS,
  libvirt: { pools: ['vagoth'], wipe: 'stream', wipeMiBPerSecond: 0 },
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
  const factory = (host: HostAddress): Driver => {
    // A host is checked at registration; again here, before anything is opened or run for it.
    try {
      checkHostUri(host.driver, host.uri, options.hostUris);
    } catch (err) {
      if (!(err instanceof HostUriError)) throw err;
      throw new DriverError('rejected', `uri: ${err.message}`, { code: 'UriRefused' });
    }
    switch (host.driver) {
      case 'libvirt':
        return new LibvirtDriver({
          uri: host.uri,
          hostUris: options.hostUris,
          pools: options.libvirt.pools,
          sharedPools: options.libvirt.sharedPools ?? [],
          copyMiBPerSecond: options.libvirt.copyMiBPerSecond ?? 0,
          // libvirt's test driver takes only its own domain type.
          ...(options.libvirt.domainType && !host.uri.startsWith('test:')
            ? { domainType: options.libvirt.domainType }
            : {}),
          wipe: options.libvirt.wipe,
          wipeMiBPerSecond: options.libvirt.wipeMiBPerSecond,
          ...(options.libvirt.consoleLogDir
            ? { consoleLogDir: options.libvirt.consoleLogDir }
            : {}),
        });
      case 'geats':
        return createGeatsDriver(
          host.uri,
          { ...options.geats, localAgents: options.hostUris.geatsAgents },
          // A migration's target is checked as every host is, before anything runs for it.
          (target) => {
            const driver = factory(target);
            if (driver instanceof GeatsDriver) return driver;
            throw new DriverError('unsupported', `${target.name} is not a geats host`);
          },
        );
    }
  };
  return factory;
}

/** A factory with the defaults: geats+ssh hosts need a configured key, so use createDriverFactory. */
export const createDriver: DriverFactory = createDriverFactory(DEFAULT_DRIVERS_OPTIONS);
