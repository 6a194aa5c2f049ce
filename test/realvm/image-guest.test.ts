import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { settle, type Harness } from '../support/harness.ts';
import { prepareGuestDir, startGuestHarness } from './guest-harness.ts';
import { createDirPool, virsh, waitForConsole } from './host.ts';

const realvm = inject('realvm');
const tag = randomBytes(3).toString('hex');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 user@laptop';

/**
 * A real guest made from images through the API, as a cloud layer makes one: its kernel,
 * initrd and disk imported, its NIC on an isolated libvirt network (no <forward>: nothing it
 * sends leaves the bridge), and what its cloud-init seed says (name, address on the NIC with
 * the VM's MAC, keys, user-data) read back from its serial console.
 */
describe.skipIf(realvm.skip)(
  realvm.skip ? `a guest from images (skipped: ${realvm.skip})` : 'a guest from images',
  () => {
    const uri = realvm.uri;
    const pool = `vagoth-ig-${tag}`;
    const network = `vagoth-ig-${tag}`;
    let dir: string;
    let h: Harness;

    beforeAll(async () => {
      const guest = await prepareGuestDir('vagoth-image-guest-');
      ({ dir } = guest);
      const { allowed } = guest;
      await createDirPool(uri, pool, path.join(dir, 'pool'));
      // Isolated: a bridge of its own, no address, no forwarding, no DHCP.
      const xml = path.join(dir, 'net.xml');
      await writeFile(xml, `<network><name>${network}</name><bridge name='vgi${tag}'/></network>`);
      await virsh(uri, 'net-create', xml);
      // The system daemon's socket, besides what tests usually reach.
      h = await startGuestHarness(guest, {
        pool,
        socketDirs: ['/run/libvirt', '/var/run/libvirt'],
      });
      await h.api.hosts.register({ name: 'ig-host', driver: 'libvirt', uri, diskGiB: 50 });
      // TEST-NET-1: an address range no real network uses.
      await h.api.networks.create({
        name: network,
        cidr: '192.0.2.0/24',
        gateway: '192.0.2.1',
        dns: ['192.0.2.1'],
      });
      for (const [name, file, format] of [
        ['ig-kernel', 'vmlinuz', 'raw'],
        ['ig-initrd', 'initrd', 'raw'],
      ] as const) {
        const image = await h.api.images.create({ name, source: path.join(allowed, file), format });
        await h.temporal.workflow.getHandle(image.operation!.id, image.operation!.runId).result();
      }
      const disk = await h.api.images.create({
        name: 'ig-disk',
        source: path.join(allowed, 'disk.qcow2'),
        boot: {
          kernel: 'ig-kernel',
          initrd: 'ig-initrd',
          cmdline: `console=ttyS0 quiet vagoth.boot=${tag}`,
        },
      });
      await h.temporal.workflow.getHandle(disk.operation!.id, disk.operation!.runId).result();
    });

    afterAll(async () => {
      // Only what this file made: its VM (should a test have failed before removing it), its
      // network and its pool.
      await virsh(uri, 'destroy', `ig-${tag}`).catch(() => {});
      await virsh(uri, 'undefine', `ig-${tag}`).catch(() => {});
      await h?.close();
      await virsh(uri, 'net-destroy', network).catch(() => {});
      await virsh(uri, 'pool-destroy', pool).catch(() => {});
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('boots with the name, address, keys and user-data of its seed, and leaves nothing behind', async () => {
      const name = `ig-${tag}`;
      const { operation, vm: claimed } = await h.api.vms.create({
        name,
        vcpus: 1,
        memoryMiB: 256,
        image: 'ig-disk',
        nics: [{ network, ip: '192.0.2.10' }],
        sshAuthorizedKeys: [KEY],
        userData: '#!/bin/sh\necho "user-data ran on $(hostname)"\n',
      });
      expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      const mac = claimed.definition.nics[0]!.mac;
      const log = path.join(dir, 'console', `${claimed.id}.log`);
      await waitForConsole(
        log,
        new RegExp(`VAGOTH-SEED hostname=${name} instance=${claimed.id} keys=1`),
      );
      await waitForConsole(
        log,
        new RegExp(`VAGOTH-NET iface=\\w+ mac=${mac} addr=192\\.0\\.2\\.10/24`),
      );
      await waitForConsole(log, new RegExp(`VAGOTH-USER-DATA user-data ran on ${name}`));

      const decommissioned = await h.api.vms.decommission({ name });
      expect(await settle(h, decommissioned.operation)).toMatchObject({ status: 'completed' });
      const wipes = await h.api.vms.wipes({ id: claimed.id });
      expect(wipes.map((w) => w.volume).sort()).toEqual(
        [`vagoth-${claimed.id}-disk0.img`, `vagoth-${claimed.id}-seed.iso`].sort(),
      );
      for (const w of wipes) expect(w.check).toMatchObject({ zero: true });
      for (const image of ['ig-disk', 'ig-kernel', 'ig-initrd']) {
        expect(await h.api.images.delete({ name: image })).toEqual({ name: image, deleted: true });
      }
      expect((await virsh(uri, 'vol-list', pool)).includes('vagoth-')).toBe(false);
    });
  },
);
