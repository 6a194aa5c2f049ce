import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress, VolumeRef } from '../../drivers/driver.ts';
import { simulatedPoolPath } from '../../drivers/libvirt/simulated-host.ts';
import {
  driverFailure as failure,
  SimulatedHosts,
  testImage,
  vmSpec as vm,
  volumeNames,
} from '../support/libvirt-hosts.ts';

let hosts: SimulatedHosts;
beforeAll(async () => {
  hosts = await SimulatedHosts.create();
});
afterAll(async () => {
  await hosts?.close();
});

const GiB = 1024 ** 3;

describe('provision', () => {
  it('creates the disk in the first configured pool, named for the VM, idempotently', async () => {
    const h = await hosts.add({ pools: [{ name: 'spare' }] }, { pools: ['vagoth', 'spare'] });
    const spec = vm({ diskGiB: 10 });
    const volumes = h.driver.volumesFor(spec);
    expect(volumes).toEqual([{ pool: 'vagoth', name: `vagoth-${spec.id}-disk0.img` }]);
    expect(h.driver.volumesFor(vm({ diskGiB: 0 }))).toEqual([]);
    expect(await h.driver.provision({ ...spec, volumes })).toEqual(volumes);
    expect(await h.driver.provision({ ...spec, volumes })).toEqual(volumes);
    const pool = await (await h.conn()).lookupStoragePoolByName('vagoth');
    const vol = await pool.lookupVolumeByName(volumes[0]!.name);
    expect((await vol.getInfo()).capacity).toBe(10 * GiB);
    expect(await vol.getPath()).toBe(`${simulatedPoolPath(h.name, 'vagoth')}/${volumes[0]!.name}`);
    expect(await volumeNames(await h.conn(), 'spare')).toEqual([]);
  });

  it('makes the root an overlay on the host’s copy of the image, then extra disks and the seed', async () => {
    const h = await hosts.add();
    const image = testImage();
    const spec = vm({ image, diskGiB: 3, disks: [{ sizeGiB: 5 }] });
    const volumes = h.driver.volumesFor(spec);
    expect(volumes.map((v) => v.name)).toEqual([
      `vagoth-${spec.id}-disk0.img`,
      `vagoth-${spec.id}-disk1.img`,
      `vagoth-${spec.id}-seed.iso`,
    ]);
    // Not on the host yet: refused, nothing made.
    const err = await failure(h.driver.provision({ ...spec, volumes }));
    expect(err.kind).toBe('rejected');
    expect(err.message).toContain('definition.image');
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual([]);

    await h.driver.copyImage(image, '/nonexistent: a simulated host reads no file');
    await h.driver.copyImage(image, '/nonexistent');
    const copy = h.driver.imageVolume(image);
    expect(copy).toEqual({ pool: 'vagoth', name: `vagoth-image-${image.id}.qcow2` });
    await h.driver.provision({ ...spec, volumes });
    const pool = await (await h.conn()).lookupStoragePoolByName('vagoth');
    const info = async (name: string) => (await pool.lookupVolumeByName(name)).getInfo();
    expect((await info(volumes[0]!.name)).capacity).toBe(3 * GiB);
    expect((await info(volumes[1]!.name)).capacity).toBe(5 * GiB);
    expect((await info(volumes[2]!.name)).capacity).toBe(4 * 1024 ** 2);
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual(
      [copy.name, ...volumes.map((v) => v.name)].sort(),
    );
    // The domain: the root a qcow2 overlay backed by the host's copy, the seed a read-only CD.
    await h.driver.define({ ...spec, volumes });
    const xml = await (await (await h.conn()).lookupDomainByName(spec.name)).getXMLDesc();
    expect(xml).toMatch(/<driver name='qemu' type='qcow2'\/>/);
    expect(xml).toContain(`${copy.name}'/>`);
    expect(xml).toMatch(/seed\.iso'\/>\s*<target dev='vd[a-z]' bus='virtio'\/>\s*<readonly\/>/);

    // Deprovision takes the VM's volumes, never the image's copy, which other VMs share.
    await h.driver.deprovision({ ...spec, volumes });
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual([copy.name]);
    await h.driver.removeImage(image);
    await h.driver.removeImage(image);
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual([]);
  });

  it('builds again a volume that a lost attempt may have left half-made, never one reported whole or in use', async () => {
    const h = await hosts.add();
    const spec = vm({ diskGiB: 3 });
    const volumes = h.driver.volumesFor(spec);
    const pool = await (await h.conn()).lookupStoragePoolByName('vagoth');
    const capacity = async () =>
      (await (await pool.lookupVolumeByName(volumes[0]!.name)).getInfo()).capacity;
    // What an attempt lost mid-clone leaves: the VM's volume, not what it should be.
    const leftHalfMade = async () => {
      const old = await pool.lookupVolumeByName(volumes[0]!.name).catch(() => null);
      await old?.delete(0);
      const xml = `<volume><name>${volumes[0]!.name}</name><capacity>${GiB}</capacity></volume>`;
      (await pool.createVolumeXML(xml)).free();
    };

    // The next attempt, with no progress on record (the default; a first attempt too).
    await leftHalfMade();
    await h.driver.provision({ ...spec, volumes });
    expect(await capacity()).toBe(3 * GiB);

    // An earlier attempt reported it created: kept as it is.
    await leftHalfMade();
    await h.driver.provision(
      { ...spec, volumes },
      { resumeFrom: { step: 'provision', done: 1, total: 1 } },
    );
    expect(await capacity()).toBe(GiB);

    // The VM's domain is on the host (a migration further on than its heartbeat said): the
    // volume is in use and kept, whatever the progress says.
    await h.driver.define({ ...spec, volumes });
    await h.driver.provision({ ...spec, volumes });
    expect(await capacity()).toBe(GiB);
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual([volumes[0]!.name]);
  });
});

describe('deprovision', () => {
  it('undefines the domain, then wipes (or says why not) and deletes its disks', async () => {
    const h = await hosts.add();
    const spec = vm({ diskGiB: 4 });
    const volumes = await h.driver.provision({ ...spec, volumes: h.driver.volumesFor(spec) });
    await h.driver.define({ ...spec, volumes });
    await h.driver.start(spec.name);
    const domain = await (await h.conn()).lookupDomainByName(spec.name);
    expect(await domain.getXMLDesc()).toContain(
      `<source pool='vagoth' volume='${volumes[0]!.name}'/>`,
    );
    const progress: Progress[] = [];
    await h.driver.deprovision({ ...spec, volumes }, { onProgress: (p) => progress.push(p) });
    expect(await h.driver.info(spec.name)).toBeNull();
    expect(await volumeNames(await h.conn(), 'vagoth')).toEqual([]);
    // libvirt's test driver can neither wipe nor stream to a volume, and its volumes hold no bytes.
    expect(progress.at(-1)).toEqual({
      step: `wipe vagoth/${volumes[0]!.name}: skipped, a simulated volume holds no bytes`,
      done: 4 * GiB,
      total: 4 * GiB,
    });
    await h.driver.deprovision({ ...spec, volumes });
  });

  it('refuses any volume that is not this VM’s in a configured pool, and deletes nothing', async () => {
    const spec = vm({ diskGiB: 1 });
    const own = `vagoth-${spec.id}-disk0.img`;
    const astray = `vagoth-${spec.id}-disk1.img`;
    const h = await hosts.add({
      volumes: [
        { name: 'base.img', capacityGiB: 1 },
        { name: astray, capacityGiB: 1, path: '/var/lib/important/disk.img' },
      ],
      pools: [{ name: 'other', volumes: [{ name: own, capacityGiB: 1 }] }],
    });
    const mine: VolumeRef = { pool: 'vagoth', name: own };
    await h.driver.provision({ ...spec, volumes: [mine] });
    await h.driver.define({ ...spec, volumes: [mine] });
    const notNamedForIt = [mine, { pool: 'vagoth', name: 'base.img' }];
    const notConfigured = [mine, { pool: 'other', name: own }];
    const outsideThePool = [mine, { pool: 'vagoth', name: astray }];
    for (const volumes of [notNamedForIt, notConfigured, outsideThePool]) {
      const err = await failure(h.driver.deprovision({ ...spec, volumes }));
      expect(err.kind).toBe('not-ours');
    }
    for (const volumes of [notNamedForIt, notConfigured]) {
      expect((await failure(h.driver.define({ ...spec, volumes }))).kind).toBe('not-ours');
      expect((await failure(h.driver.provision({ ...spec, volumes }))).kind).toBe('not-ours');
    }
    const conn = await h.conn();
    expect(await volumeNames(conn, 'vagoth')).toEqual(['base.img', own, astray].sort());
    expect(await volumeNames(conn, 'other')).toEqual([own]);
    expect((await h.driver.info(spec.name))?.vagothId).toBe(spec.id);
  });
});
