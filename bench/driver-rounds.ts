// The calls bench/driver measures: each driver operation, and beside it the same libvirt calls
// made on the binding directly, so the difference is the driver's own cost.
import { randomUUID } from 'node:crypto';
import type { DomainSpec, VolumeRef } from '../drivers/driver.ts';
import { domainXml } from '../drivers/libvirt/domain-xml.ts';
import { UNDEFINE_FLAGS } from '../drivers/libvirt/domains.ts';
import type { LibvirtDriver } from '../drivers/libvirt/libvirt-driver.ts';
import { constants as C, type Connection, type Domain } from '../native/libvirt/index.ts';

export const OPERATIONS = [
  'provision',
  'define',
  'start',
  'info',
  'status',
  'stop',
  'undefine',
  'deprovision',
] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface RoundOptions {
  pool: string;
  domainType: string;
  diskGiB: number;
}

export type Samples = Record<Operation, number[]>;

export const emptySamples = (): Samples =>
  Object.fromEntries(OPERATIONS.map((op) => [op, []])) as unknown as Samples;

function benchVm(diskGiB: number): DomainSpec {
  const id = randomUUID();
  return {
    id,
    name: `vagoth-bench-${id.slice(0, 8)}`,
    definition: {
      vcpus: 1,
      memoryMiB: 128,
      diskGiB,
      nics: [],
      placement: {},
    },
  };
}

async function timed(samples: Samples, op: Operation, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  samples[op].push(performance.now() - t0);
}

/** One VM through its life by the driver. */
export async function driverRound(driver: LibvirtDriver, options: RoundOptions, samples: Samples) {
  const vm = benchVm(options.diskGiB);
  const spec = { ...vm, volumes: driver.volumesFor(vm) };
  await timed(samples, 'provision', () => driver.provision(spec));
  await timed(samples, 'define', () => driver.define(spec));
  await timed(samples, 'start', () => driver.start(spec.name));
  await timed(samples, 'info', () => driver.info(spec.name));
  await timed(samples, 'status', () => driver.status());
  await timed(samples, 'stop', () => driver.stop(spec.name));
  await timed(samples, 'undefine', () => driver.undefine(spec));
  await timed(samples, 'deprovision', () => driver.deprovision(spec));
}

const WINDOW = 64 * 1024 ** 2;

const ignore = (code: number) => (err: { code?: unknown }) => {
  if (err.code !== code) throw err;
};

async function describe(d: Domain): Promise<void> {
  await Promise.all([d.getInfo(), d.getXMLDesc()]);
  d.free();
}

/** Runs `fn` on the domain of that name and frees it, as the driver does. */
async function onDomain(conn: Connection, name: string, fn: (d: Domain) => Promise<unknown>) {
  const d = await conn.lookupDomainByName(name);
  try {
    await fn(d);
  } finally {
    d.free();
  }
}

/** The same VM life made of the libvirt calls the driver makes, with none of its checks. */
export async function bindingRound(conn: Connection, options: RoundOptions, samples: Samples) {
  const vm = benchVm(options.diskGiB);
  const volume: VolumeRef = { pool: options.pool, name: `vagoth-${vm.id}-disk0.img` };
  const xml = domainXml({ ...vm, volumes: [volume] }, { domainType: options.domainType });
  const volumeXml = `<volume><name>${volume.name}</name><capacity unit='GiB'>${options.diskGiB}</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>`;
  await timed(samples, 'provision', async () => {
    const pool = await conn.lookupStoragePoolByName(volume.pool);
    await pool.lookupVolumeByName(volume.name).catch(ignore(C.VIR_ERR_NO_STORAGE_VOL));
    (await pool.createVolumeXML(volumeXml)).free();
    pool.free();
  });
  await timed(samples, 'define', async () => {
    await conn.lookupDomainByName(vm.name).catch(ignore(C.VIR_ERR_NO_DOMAIN));
    (await conn.defineDomainXML(xml)).free();
  });
  const byName = () => conn.lookupDomainByName(vm.name);
  await timed(samples, 'start', () => onDomain(conn, vm.name, (d) => d.create()));
  await timed(samples, 'info', async () => describe(await byName()));
  await timed(samples, 'status', async () => {
    const [, , domains] = await Promise.all([
      conn.nodeGetInfo(),
      conn.nodeFreeMemory().catch(() => null),
      conn.listAllDomains(),
    ]);
    await Promise.all(domains.map(describe));
  });
  await timed(samples, 'stop', () => onDomain(conn, vm.name, (d) => d.destroy()));
  await timed(samples, 'undefine', () =>
    onDomain(conn, vm.name, async (d) => {
      await Promise.all([d.getInfo(), d.getXMLDesc()]);
      await d.undefine(UNDEFINE_FLAGS);
    }),
  );
  await timed(samples, 'deprovision', async () => {
    const pool = await conn.lookupStoragePoolByName(volume.pool);
    await pool.getXMLDesc();
    const vol = await pool.lookupVolumeByName(volume.name);
    await vol.getPath();
    await byName().catch(ignore(C.VIR_ERR_NO_DOMAIN));
    const { capacity } = await vol.getInfo();
    await vol.wipe().catch(async (err: { code?: unknown }) => {
      if (err.code !== C.VIR_ERR_NO_SUPPORT) throw err;
      for (let at = 0; at < capacity; at += WINDOW) {
        const zeroed = await vol
          .uploadZeros(at, Math.min(WINDOW, capacity - at))
          .then(() => true, ignore(C.VIR_ERR_NO_SUPPORT));
        if (!zeroed) break;
      }
    });
    await vol.delete();
    vol.free();
    pool.free();
  });
}
