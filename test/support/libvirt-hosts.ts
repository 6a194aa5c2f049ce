import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { DriverError, type DomainSpec } from '../../drivers/driver.ts';
import { connections } from '../../drivers/libvirt/connections.ts';
import { LibvirtDriver, type LibvirtDriverOptions } from '../../drivers/libvirt/libvirt-driver.ts';
import {
  writeSimulatedHost,
  type SimulatedHostOptions,
} from '../../drivers/libvirt/simulated-host.ts';
import type { Connection } from '../../native/libvirt/index.ts';
import type { VmImage } from '../../registry/types.ts';

export interface SimulatedHost {
  name: string;
  uri: string;
  address: { name: string; driver: 'libvirt'; uri: string };
  driver: LibvirtDriver;
  /** The connection the driver uses: another one to a test:///<file> URI is another hypervisor. */
  conn(): Promise<Connection>;
}

/** Simulated hypervisors (libvirt's test driver) in a folder of their own, closed together. */
export class SimulatedHosts {
  readonly #cleanup: (() => Promise<void>)[] = [];
  #count = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<SimulatedHosts> {
    return new SimulatedHosts(await mkdtemp(path.join(tmpdir(), 'vagoth-libvirt-')));
  }

  async add(
    options: Partial<SimulatedHostOptions> = {},
    driverOptions: Omit<LibvirtDriverOptions, 'uri'> = {},
  ): Promise<SimulatedHost> {
    const name = `host-${++this.#count}`;
    const uri = await writeSimulatedHost(this.dir, name, { cpus: 8, memoryMiB: 16384, ...options });
    const driver = this.driver({ uri, ...driverOptions });
    const lease = connections.lease(uri);
    this.#cleanup.push(() => lease.release());
    return {
      name,
      uri,
      address: { name, driver: 'libvirt', uri },
      driver,
      conn: () => lease.get(),
    };
  }

  /** A driver closed with the hosts. */
  driver(options: LibvirtDriverOptions): LibvirtDriver {
    const driver = new LibvirtDriver(options);
    this.#cleanup.push(() => driver.close());
    return driver;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#cleanup.map((c) => c()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A VM as the registry would hand it to a driver. */
export function vmSpec(definition: Partial<DomainSpec['definition']> = {}): DomainSpec {
  const id = randomUUID();
  return {
    id,
    name: `vm-${id.slice(0, 8)}`,
    definition: { vcpus: 2, memoryMiB: 1024, diskGiB: 0, nics: [], placement: {}, ...definition },
  };
}

/** An imported image as a VM records it (its bytes are not read on a simulated host). */
export function testImage(overrides: Partial<VmImage> = {}): VmImage {
  return {
    id: randomUUID(),
    name: 'debian-12',
    format: 'qcow2',
    sha256: '0'.repeat(64),
    sizeBytes: 300 * 1024 ** 2,
    virtualSize: 2 * 1024 ** 3,
    ...overrides,
  };
}

/** The DriverError a call fails with; the test fails if it succeeds. */
export async function driverFailure(call: Promise<unknown>): Promise<DriverError> {
  const outcome = await call.then(
    () => null,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(DriverError);
  return outcome as DriverError;
}

/** A domain vagoth did not create. */
export const foreignDomainXml = (name: string) =>
  `<domain type='test'><name>${name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>`;

/** Names of the volumes in a pool, sorted. */
export async function volumeNames(conn: Connection, pool: string): Promise<string[]> {
  const p = await conn.lookupStoragePoolByName(pool);
  try {
    const vols = await p.listAllVolumes();
    const names = vols.map((v) => v.name).sort();
    for (const v of vols) v.free();
    return names;
  } finally {
    p.free();
  }
}
