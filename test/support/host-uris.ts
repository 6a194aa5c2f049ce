import { tmpdir } from 'node:os';
import {
  createDriverFactory,
  DEFAULT_DRIVERS_OPTIONS,
  type DriverFactory,
  type HostUriPolicy,
} from '../../drivers/index.ts';

/**
 * What the tests' workers and APIs let hosts.register reach: the simulated hosts, geats
 * agents and libvirtd sockets tests write under the temp directory, nothing else.
 */
export const TEST_HOST_URIS: HostUriPolicy = {
  geatsAgents: [tmpdir()],
  simulatedHosts: true,
  simulatedHostDirs: [tmpdir()],
  libvirtSocketDirs: [tmpdir()],
};

/** The drivers a worker builds, with the tests' policy (drivers/index.ts's createDriver refuses them). */
export const testDrivers: DriverFactory = createDriverFactory({
  ...DEFAULT_DRIVERS_OPTIONS,
  hostUris: TEST_HOST_URIS,
});
