import { randomBytes, randomUUID } from 'node:crypto';
import {
  chmod,
  copyFile,
  link,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  DriverError,
  type DomainSpec,
  type VolumeRef,
  type WipeRecord,
} from '../../drivers/driver.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { PROBE } from '../../drivers/libvirt/wipe.ts';
import {
  allocateAll,
  createDirPool,
  nonZeroChunks,
  poolVolumes,
  readMarks,
  virsh,
  waitForConsole,
  writeMarks,
  type Mark,
} from './host.ts';

const realvm = inject('realvm');
const GiB = 1024 ** 3;
const run = randomBytes(4).toString('hex');

/** A rejection's DriverError; the test fails if the call succeeds or fails otherwise. */
async function driverError(call: Promise<unknown>): Promise<DriverError> {
  const outcome = await call.then(
    () => null,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(DriverError);
  return outcome as DriverError;
}

describe.skipIf(realvm.skip)(
  realvm.skip ? `a real guest under qemu (skipped: ${realvm.skip})` : 'a real guest under qemu',
  () => {
    const uri = realvm.uri;
    const pool = `vagoth-realvm-${run}`;
    const outsidePool = `vagoth-realvm-outside-${run}`;
    let dir: string;
    let driver: LibvirtDriver;
    let guest: DomainSpec & { volumes: VolumeRef[] };
    let neighbour: DomainSpec & { volumes: VolumeRef[] };
    const volumePath = (v: VolumeRef) =>
      path.join(dir, v.pool === pool ? 'pool' : 'outside', v.name);
    const consoleLog = () => path.join(dir, 'console', `${guest.id}.log`);

    const spec = (name: string, bootId: string): DomainSpec => ({
      id: randomUUID(),
      name,
      definition: {
        vcpus: 1,
        memoryMiB: 256,
        diskGiB: 1,
        nics: [],
        placement: {},
        boot: {
          kernel: path.join(dir, 'guest', 'vmlinuz'),
          initrd: path.join(dir, 'guest', 'initramfs.gz'),
          cmdline: `console=ttyS0 quiet vagoth.boot=${bootId}`,
        },
      },
    });
    const withBoot = (s: DomainSpec, bootId: string): DomainSpec => ({
      ...s,
      definition: {
        ...s.definition,
        boot: { ...s.definition.boot!, cmdline: `console=ttyS0 quiet vagoth.boot=${bootId}` },
      },
    });
    const marks = (id: string): Mark[] =>
      [0, 1024 * 1024 + 7, GiB / 2, GiB - 64].map((offset) => ({
        offset,
        text: `VAGOTH-DATA-${id}-${offset}`,
      }));

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'vagoth-realvm-'));
      // qemu runs as libvirt-qemu: it must reach the pool, the console log and the guest.
      await chmod(dir, 0o711);
      await mkdir(path.join(dir, 'guest'), { mode: 0o755 });
      await copyFile(realvm.kernel, path.join(dir, 'guest', 'vmlinuz'));
      await copyFile(realvm.initrd, path.join(dir, 'guest', 'initramfs.gz'));
      await mkdir(path.join(dir, 'console'), { mode: 0o755 });
      await mkdir(path.join(dir, 'links'));
      await createDirPool(uri, pool, path.join(dir, 'pool'));
      await createDirPool(uri, outsidePool, path.join(dir, 'outside'));
      driver = new LibvirtDriver({
        uri,
        pools: [pool],
        domainType: 'qemu',
        consoleLogDir: path.join(dir, 'console'),
      });
      const a = spec(`vagoth-realvm-${run}-a`, `${run}-1`);
      const b = spec(`vagoth-realvm-${run}-b`, `${run}-b`);
      guest = { ...a, volumes: driver.volumesFor(a) };
      neighbour = { ...b, volumes: driver.volumesFor(b) };
    });

    afterAll(async () => {
      await driver?.close();
      // Only what this file created: its two domains and its two transient pools.
      for (const name of [guest?.name, neighbour?.name].filter(Boolean) as string[]) {
        await virsh(uri, 'destroy', name).catch(() => {});
        await virsh(uri, 'undefine', name).catch(() => {});
      }
      for (const name of [pool, outsidePool])
        await virsh(uri, 'pool-destroy', name).catch(() => {});
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('provisions the VM volumes in the configured pool, and boots a guest that sees their bytes', async () => {
      expect(guest.volumes.length).toBeGreaterThan(0);
      expect(guest.volumes.every((v) => v.pool === pool)).toBe(true);
      expect(await driver.provision(guest)).toEqual(guest.volumes);
      expect(await driver.provision(neighbour)).toEqual(neighbour.volumes);
      const [root] = guest.volumes as [VolumeRef];
      expect((await stat(volumePath(root))).size).toBe(GiB);
      // Every block allocated, so the wipe must overwrite them all; the neighbour's volume stays
      // sparse, which libvirt zeroes by truncating in place: the last test covers that case.
      await allocateAll(volumePath(root));
      await writeMarks(volumePath(root), marks(guest.id));
      for (const v of neighbour.volumes) await writeMarks(volumePath(v), marks(neighbour.id));

      await driver.define(guest);
      await driver.start(guest.name);
      await waitForConsole(consoleLog(), new RegExp(`VAGOTH-GUEST-UP boot=${run}-1\\b`));
      const disk = await waitForConsole(
        consoleLog(),
        /VAGOTH-DISK name=vda bytes=(\d+) head=([0-9a-f]+)/,
      );
      expect(Number(disk[1])).toBe(GiB);
      // The guest reads, through its virtio disk, what the test wrote into the volume file.
      const head = marks(guest.id)[0]!.text;
      expect(Buffer.from(disk[2]!, 'hex').subarray(0, head.length).toString()).toBe(head);
      const info = await driver.info(guest.name);
      expect(info).toMatchObject({
        state: 'running',
        vagothId: guest.id,
        vcpus: 1,
        memoryMiB: 256,
      });
    });

    it('shuts the guest down through ACPI: the guest itself powers off', async () => {
      await waitForConsole(consoleLog(), /VAGOTH-READY/);
      await driver.shutdown(guest.name, { timeoutMs: 120_000 });
      expect((await driver.info(guest.name))?.state).toBe('stopped');
      expect(await readFile(consoleLog(), 'utf8')).toContain('VAGOTH-GUEST-DOWN');
    });

    it('powers the guest off with stop, after booting it again with a new command line', async () => {
      guest = { ...withBoot(guest, `${run}-2`), volumes: guest.volumes };
      await driver.define(guest);
      await driver.start(guest.name);
      await waitForConsole(consoleLog(), new RegExp(`VAGOTH-GUEST-UP boot=${run}-2\\b`));
      await driver.stop(guest.name);
      expect((await driver.info(guest.name))?.state).toBe('stopped');
      await driver.stop(guest.name);
    });

    it('refuses to deprovision a volume that is not the VM’s or lies outside its pools, and changes nothing', async () => {
      const [root] = guest.volumes as [VolumeRef];
      const outside: VolumeRef = { pool: outsidePool, name: root.name };
      await writeFile(volumePath(outside), 'not vagoth’s');

      // The VM's own volume first: one foreign volume must refuse the whole request.
      const another = await driverError(
        driver.deprovision({ ...guest, volumes: [root, ...neighbour.volumes] }),
      );
      expect(another.kind).toBe('not-ours');
      const foreignPool = await driverError(driver.deprovision({ ...guest, volumes: [outside] }));
      expect(foreignPool.kind).toBe('not-ours');

      expect((await driver.info(guest.name))?.vagothId).toBe(guest.id);
      expect(await readMarks(volumePath(root), marks(guest.id))).toEqual(
        marks(guest.id).map((m) => m.text),
      );
      expect(await readFile(volumePath(outside), 'utf8')).toBe('not vagoth’s');
      for (const v of neighbour.volumes) {
        expect(await readMarks(volumePath(v), marks(neighbour.id))).toEqual(
          marks(neighbour.id).map((m) => m.text),
        );
      }
    });

    it('deprovision zeroes every volume before deleting it, and touches nothing else', async () => {
      const [root] = guest.volumes as [VolumeRef];
      // A second name for the volume's inode, outside the pool: it shows what deletion left behind.
      const kept = path.join(dir, 'links', 'root');
      await link(volumePath(root), kept);
      const sentinel = path.join(dir, 'pool', `${root.name}.sentinel`);
      await writeFile(sentinel, 'in the pool, but no volume vagoth recorded');

      const records: WipeRecord[] = [];
      await driver.deprovision(guest, { onWiped: async (r) => void records.push(r) });
      // Streamed over every allocated byte, read back, and said so before the deletion.
      expect(records).toMatchObject([
        {
          volume: root,
          method: 'stream',
          sizeBytes: GiB,
          // Every 8 MiB that holds data (the guest's and the marks): the volume is thin.
          bytesWritten: expect.any(Number),
          resumedFrom: 0,
          check: { blocks: 66, bytesRead: 6 * 1024 ** 2, nonZeroAt: null },
        },
      ]);
      const written = records[0]!.bytesWritten!;
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThanOrEqual(GiB);
      expect(written % PROBE).toBe(0);

      expect(await driver.info(guest.name)).toBeNull();
      await expect(stat(volumePath(root))).rejects.toThrow(/ENOENT/);
      const volumes = await poolVolumes(uri, pool);
      expect(volumes).not.toContain(root.name);
      // Every byte of the file overwritten with zeros (libvirt's own wipe, VAGOTH_LIBVIRT_WIPE=
      // libvirt, may grow it a block past its capacity on ext4: at least a GiB, either way).
      const wiped = await nonZeroChunks(kept);
      expect(wiped.dirty).toEqual([]);
      expect(wiped.size).toBeGreaterThanOrEqual(GiB);

      expect(await readFile(sentinel, 'utf8')).toBe('in the pool, but no volume vagoth recorded');
      expect(await readFile(volumePath({ pool: outsidePool, name: root.name }), 'utf8')).toBe(
        'not vagoth’s',
      );
      for (const v of neighbour.volumes) {
        expect(volumes).toContain(v.name);
        expect(await readMarks(volumePath(v), marks(neighbour.id))).toEqual(
          marks(neighbour.id).map((m) => m.text),
        );
      }
      // Already gone is success, so a retried deprovision after a lost answer is harmless.
      await driver.deprovision(guest);
    });

    it('deprovision zeroes a sparse volume too, in place', async () => {
      const kept: string[] = [];
      for (const [i, v] of neighbour.volumes.entries()) {
        kept.push(path.join(dir, 'links', `neighbour-${i}`));
        await link(volumePath(v), kept[i]!);
      }
      await driver.deprovision(neighbour);
      expect(await poolVolumes(uri, pool)).toEqual([`${guest.volumes[0]!.name}.sentinel`]);
      for (const file of kept) expect(await nonZeroChunks(file)).toEqual({ size: GiB, dirty: [] });
    });
  },
);
