import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DomainSpec, VolumeRef } from '../../drivers/driver.ts';
import type { HostAddress } from '../../registry/types.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { startDirPoolDaemon, type DirPoolDaemon } from '../support/dir-pool-daemon.ts';
import { fileDigest, writePattern } from '../support/disk-pattern.ts';
import { waitForConsole, writeMarks } from './host.ts';

const realvm = inject('realvm');
const run = randomBytes(4).toString('hex');

/**
 * A real guest moved cold between two libvirt hosts: two private daemons on this machine, each
 * with a directory pool and a console log directory of its own. The guest boots on the first
 * and prints the head of its disk, which holds data written there; it is stopped, migrated,
 * and boots on the second, where it must print the same head, from its own copy of the disk.
 */
describe.skipIf(realvm.skip)(
  realvm.skip
    ? `a real guest moved cold with its disk (skipped: ${realvm.skip})`
    : 'a real guest moved cold with its disk',
  () => {
    const pool = `vagoth-realvm-move-${run}`;
    const hosts: DirPoolDaemon[] = [];
    const drivers: LibvirtDriver[] = [];
    let guest: DomainSpec & { volumes: VolumeRef[] };
    // The target's definition is the source driver's, so the guest logs to the same file there.
    const consoleLog = () => path.join(hosts[0]!.daemon.dir, 'console', `${guest.id}.log`);

    beforeAll(async () => {
      hosts.push(...(await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)])));
      for (const h of hosts) {
        // The daemons and their qemu run as the owner of their directory: give it the guest's
        // kernel and a console log directory.
        const owner = await stat(h.daemon.dir);
        for (const sub of ['guest', 'console']) {
          await mkdir(path.join(h.daemon.dir, sub), { mode: 0o755 });
          await chown(path.join(h.daemon.dir, sub), owner.uid, owner.gid);
        }
        for (const [from, name] of [
          [realvm.kernel, 'vmlinuz'],
          [realvm.initrd, 'initramfs.gz'],
        ] as const) {
          await copyFile(from, path.join(h.daemon.dir, 'guest', name));
          await chmod(path.join(h.daemon.dir, 'guest', name), 0o644);
        }
        drivers.push(
          new LibvirtDriver({
            uri: h.uri,
            pools: [pool],
            domainType: 'qemu',
            consoleLogDir: path.join(h.daemon.dir, 'console'),
          }),
        );
      }
      // Both hosts hold the kernel at the same path under their own directory: the guest's
      // definition names the first's, readable by the second's qemu too (same owner).
      const id = randomUUID();
      const spec: DomainSpec = {
        id,
        name: `vagoth-realvm-move-${run}`,
        definition: {
          vcpus: 1,
          memoryMiB: 256,
          diskGiB: 1,
          nics: [],
          placement: {},
          boot: {
            kernel: path.join(hosts[0]!.daemon.dir, 'guest', 'vmlinuz'),
            initrd: path.join(hosts[0]!.daemon.dir, 'guest', 'initramfs.gz'),
            cmdline: `console=ttyS0 quiet vagoth.boot=${run}`,
          },
        },
      };
      guest = { ...spec, volumes: drivers[0]!.volumesFor(spec) };
    });

    afterAll(async () => {
      // A daemon's qemu outlives it: power the guest off wherever it is first.
      const names = [guest?.name, `${guest?.name}-live`];
      await Promise.allSettled(drivers.flatMap((d) => names.map((n) => n && d.stop(n))));
      await Promise.allSettled(drivers.map((d) => d.close()));
      await Promise.allSettled(hosts.map((h) => h.stop()));
    });

    it('boots on the second host from a byte-for-byte copy of its disk', async () => {
      const [from, to] = drivers as [LibvirtDriver, LibvirtDriver];
      await from.provision(guest);
      const [root] = guest.volumes as [VolumeRef];
      const file = path.join(hosts[0]!.poolDir, root.name);
      await writePattern(file);
      const head = `VAGOTH-MOVED-${run}`;
      await writeMarks(file, [{ offset: 0, text: head }]);
      const digest = await fileDigest(file);

      await from.define(guest);
      await from.start(guest.name);
      const first = await waitForConsole(
        consoleLog(),
        /VAGOTH-DISK name=vda bytes=\d+ head=([0-9a-f]+)/,
      );
      expect(Buffer.from(first[1]!, 'hex').toString('latin1')).toContain(head);
      await waitForConsole(consoleLog(), /VAGOTH-READY/);
      await from.stop(guest.name);
      await writeFile(consoleLog(), '');

      await to.provision(guest);
      const target: HostAddress = { name: 'second', driver: 'libvirt', uri: hosts[1]!.uri };
      expect(await from.migrate(guest, target)).toEqual({ live: false });
      expect(await fileDigest(path.join(hosts[1]!.poolDir, root.name))).toBe(digest);
      await from.deprovision(guest, { movedAway: true });

      await to.start(guest.name);
      const second = await waitForConsole(
        consoleLog(),
        /VAGOTH-DISK name=vda bytes=\d+ head=([0-9a-f]+)/,
      );
      expect(Buffer.from(second[1]!, 'hex').toString('latin1')).toContain(head);
      await waitForConsole(consoleLog(), /VAGOTH-READY/);
      await to.stop(guest.name);
      await to.deprovision(guest);
    });

    it('moves a running guest live, libvirt copying its disk as it goes', async () => {
      const [from, to] = drivers as [LibvirtDriver, LibvirtDriver];
      const base = { ...guest, id: randomUUID(), name: `${guest.name}-live` };
      const live = { ...base, volumes: from.volumesFor(base) };
      await from.provision(live);
      const [root] = live.volumes as [VolumeRef];
      const file = path.join(hosts[0]!.poolDir, root.name);
      await writePattern(file);
      const digest = await fileDigest(file);
      await from.define(live);
      await from.start(live.name);
      const log = path.join(hosts[0]!.daemon.dir, 'console', `${live.id}.log`);
      await waitForConsole(log, /VAGOTH-READY/);

      await to.provision(live);
      const target: HostAddress = { name: 'second', driver: 'libvirt', uri: hosts[1]!.uri };
      expect(await from.migrate(live, target)).toEqual({ live: true });
      expect(await from.info(live.name)).toBeNull();
      expect((await to.info(live.name))?.state).toBe('running');
      await to.stop(live.name);
      // The guest only reads its disk: the copy holds what the source held, byte for byte.
      expect(await fileDigest(path.join(hosts[1]!.poolDir, root.name))).toBe(digest);
      await from.deprovision(live, { movedAway: true });
      await expect(stat(file)).rejects.toThrow();
      await to.deprovision(live);
    });
  },
);
