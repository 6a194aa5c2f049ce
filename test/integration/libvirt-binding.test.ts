import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  constants as C,
  isLibvirtError,
  isReleasedError,
  libvirtVersion,
  open,
  type Connection,
  type LibvirtError,
} from '../../native/libvirt/index.ts';

// test:///default is libvirt's built-in simulated host: fixed figures, one running domain `test`.
let conn: Connection;
beforeAll(async () => {
  conn = await open('test:///default');
});
afterAll(async () => {
  await conn?.close();
});

async function libvirtFailure(call: Promise<unknown>): Promise<LibvirtError> {
  const outcome = await call.then(
    () => null,
    (err: unknown) => err,
  );
  expect(isLibvirtError(outcome)).toBe(true);
  return outcome as LibvirtError;
}

describe('the libvirt binding', () => {
  it('reads the node and its domains', async () => {
    expect(libvirtVersion).toBeGreaterThanOrEqual(9_000_000);
    expect(await conn.nodeGetInfo()).toMatchObject({ cpus: 16, memoryKiB: 3145728, nodes: 2 });
    const domains = await conn.listAllDomains();
    expect(domains.map((d) => d.name)).toEqual(['test']);
    expect(await domains[0]!.getState()).toMatchObject({ state: C.VIR_DOMAIN_RUNNING });
    expect(await domains[0]!.getXMLDesc()).toContain('<name>test</name>');
  });

  it("rejects with libvirt's error number, domain and message", async () => {
    const err = await libvirtFailure(conn.lookupDomainByName('no-such-domain'));
    expect(err).toMatchObject({
      name: 'LibvirtError',
      code: C.VIR_ERR_NO_DOMAIN,
      domain: C.VIR_FROM_TEST,
      call: 'virDomainLookupByName',
    });
    expect(err.message).toMatch(/^Domain not found/);
  });

  it('keeps each call’s error apart while calls fail at once on the thread pool', async () => {
    const pool = await conn.lookupStoragePoolByName('default-pool');
    const calls = Array.from({ length: 60 }, (_, i) =>
      [
        () => conn.lookupDomainByName(`missing-${i}`),
        () => conn.lookupStoragePoolByName(`missing-${i}`),
        () => pool.lookupVolumeByName(`missing-${i}`),
        () => conn.nodeGetInfo(),
      ][i % 4]!(),
    );
    const outcomes = await Promise.allSettled(calls);
    const codes = outcomes.map((o) =>
      o.status === 'fulfilled' ? 0 : (o.reason as LibvirtError).code,
    );
    const expected = [C.VIR_ERR_NO_DOMAIN, C.VIR_ERR_NO_STORAGE_POOL, C.VIR_ERR_NO_STORAGE_VOL, 0];
    expect(codes).toEqual(calls.map((_, i) => expected[i % 4]));
  });

  it('keeps each call’s error apart on threads of their own beside the pool', async () => {
    const pool = await conn.lookupStoragePoolByName('default-pool');
    const existing = `<volume><name>binding-apart.img</name><capacity>4096</capacity></volume>`;
    const vol = await pool.createVolumeXML(existing);
    try {
      // Wipes and volume creations get threads of their own; a lookup waits in the pool.
      const calls = Array.from({ length: 40 }, (_, i) =>
        [
          () => vol.wipe(),
          () => pool.createVolumeXML('<volume/>'),
          () => pool.createVolumeXML(existing),
          () => pool.lookupVolumeByName(`missing-${i}`),
        ][i % 4]!(),
      );
      const outcomes = await Promise.allSettled(calls);
      const failures = outcomes.map((o) =>
        o.status === 'fulfilled' ? null : (o.reason as LibvirtError),
      );
      const expected = [
        { code: C.VIR_ERR_NO_SUPPORT, call: 'virStorageVolWipePattern' },
        { code: C.VIR_ERR_XML_ERROR, call: 'virStorageVolCreateXML' },
        { code: C.VIR_ERR_OPERATION_FAILED, call: 'virStorageVolCreateXML' },
        { code: C.VIR_ERR_NO_STORAGE_VOL, call: 'virStorageVolLookupByName' },
      ];
      expect(failures.every(isLibvirtError)).toBe(true);
      expect(failures.map((f) => f && { code: f.code, call: f.call })).toEqual(
        calls.map((_, i) => expected[i % 4]),
      );
    } finally {
      await vol.delete();
    }
  });

  it('creates, clones and deletes storage volumes', async () => {
    const pool = await conn.lookupStoragePoolByName('default-pool');
    const xml = (name: string, mib: number) =>
      `<volume><name>${name}</name><capacity unit='MiB'>${mib}</capacity></volume>`;
    const vol = await pool.createVolumeXML(xml('binding-a.img', 8));
    const copy = await pool.createVolumeXMLFrom(xml('binding-b.img', 16), vol);
    expect(await copy.getPath()).toBe('/default-pool/binding-b.img');
    expect((await copy.getInfo()).capacity).toBe(16 * 1024 * 1024);
    // The test driver has neither: the driver's deprovision relies on these answers.
    expect((await libvirtFailure(vol.wipe())).code).toBe(C.VIR_ERR_NO_SUPPORT);
    expect((await libvirtFailure(vol.uploadZeros(0, 4096))).code).toBe(C.VIR_ERR_NO_SUPPORT);
    await vol.delete();
    await copy.delete();
    const names = (await pool.listAllVolumes()).map((v) => v.name);
    expect(names).not.toContain('binding-a.img');
    expect(names).not.toContain('binding-b.img');
  });

  it('refuses objects it did not make and arguments of the wrong type, naming them', async () => {
    const [domain] = await conn.listAllDomains();
    const DomainClass = (domain as object).constructor as new () => unknown;
    expect(() => new DomainClass()).toThrow(/objects come from the binding/);
    const untyped = conn as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => untyped.lookupDomainByName!(42)).toThrow(new TypeError('name must be a string'));
    const pool = await conn.lookupStoragePoolByName('default-pool');
    expect(() => pool.createVolumeXMLFrom('<volume/>', domain as never)).toThrow(
      new TypeError('source must be a StorageVol'),
    );
  });

  it('refuses calls on an object freed or a connection closed', async () => {
    const own = await open('test:///default');
    const [domain] = await own.listAllDomains();
    domain!.free();
    const freed = (() => {
      try {
        void domain!.getInfo();
      } catch (err) {
        return err;
      }
    })();
    expect(isReleasedError(freed)).toBe(true);
    await own.close();
    await own.close();
    expect(() => own.nodeGetInfo()).toThrow(/Connection is closed/);
  });
});
