import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { apiClient, waitForOperation, type ApiClient } from '../support/api-client.ts';
import { type Harness } from '../support/harness.ts';
import {
  startNamespacedLibvirtd,
  type NamespacedLibvirtd,
} from '../support/namespaced-libvirtd.ts';
import { prepareGuestDir, startGuestHarness } from './guest-harness.ts';
import { createDirPool, poolVolumes, virsh, waitForConsole } from './host.ts';

const realvm = inject('realvm');
const tag = randomBytes(3).toString('hex');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 user@laptop';
const MARK = `VAGOTH-MARK-${tag}`;

/**
 * The user-data the guest runs at each boot: it reports whether its root disk (vda) holds the
 * marker 4 KiB in, and writes it there when it does not. So the first boot says `absent`, a boot
 * on a moved disk says `present`, and a boot on a disk built again says `absent` once more.
 */
const USER_DATA = `#!/bin/sh
found=$(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c ${MARK.length})
if [ "$found" = "${MARK}" ]; then echo "marker=present on $(hostname)"; exit 0; fi
echo "marker=absent on $(hostname)"
printf '%s' "${MARK}" | dd of=/dev/vda bs=4096 seek=1 conv=notrunc 2>/dev/null
sync
echo "marker=written"
`;

/**
 * A real guest's whole life through the API over HTTP, as a cloud layer drives it, on two real
 * hosts: two system libvirtds on this machine, each in a mount namespace of its own, each with
 * a directory pool and an isolated network (a bridge with no <forward>, no address, no DHCP) of
 * the same names. The guest is made from imported images with an IP, keys and user-data; it
 * writes a marker to its disk; it is migrated cold and reads the marker back on the second host;
 * it is reprovisioned there and the marker is gone while its name and address stay; it is
 * decommissioned and every volume it had, the seeds included, is on record as wiped and checked.
 */
describe.skipIf(realvm.skip)(
  realvm.skip
    ? `a real guest's whole life on two hosts (skipped: ${realvm.skip})`
    : `a real guest's whole life on two hosts`,
  () => {
    const pool = `vagoth-life-${tag}`;
    const network = `vagoth-life-${tag}`;
    const hosts: { name: string; daemon: NamespacedLibvirtd; poolDir: string }[] = [];
    let dir: string;
    let h: Harness;
    let api: ApiClient;

    beforeAll(async () => {
      const guest = await prepareGuestDir('vagoth-guest-life-');
      ({ dir } = guest);
      const { allowed } = guest;
      for (const [i, name] of ['life-a', 'life-b'].entries()) {
        const daemon = await startNamespacedLibvirtd();
        const poolDir = path.join(dir, `pool-${name}`);
        hosts.push({ name, daemon, poolDir });
        await createDirPool(daemon.uri, pool, poolDir);
        const xml = path.join(dir, `net-${name}.xml`);
        await writeFile(
          xml,
          `<network><name>${network}</name><bridge name='vl${i}${tag}'/></network>`,
        );
        await virsh(daemon.uri, 'net-create', xml);
      }

      h = await startGuestHarness(guest, {
        pool,
        socketDirs: hosts.map((x) => x.daemon.dir),
        http: true,
      });
      api = apiClient(h.apiUrl, h.token);
      for (const x of hosts) {
        await api.hosts.register.mutate({
          name: x.name,
          driver: 'libvirt',
          uri: x.daemon.uri,
          diskGiB: 50,
        });
      }
      // TEST-NET-1: an address range no real network uses.
      await api.networks.create.mutate({
        name: network,
        cidr: '192.0.2.0/24',
        gateway: '192.0.2.1',
        dns: ['192.0.2.1'],
      });
      const imported = async (input: Parameters<ApiClient['images']['create']['mutate']>[0]) => {
        const { operation } = await api.images.create.mutate(input);
        expect(await waitForOperation(api, operation!, 120_000)).toMatchObject({
          status: 'completed',
        });
      };
      await imported({ name: 'life-kernel', source: path.join(allowed, 'vmlinuz'), format: 'raw' });
      await imported({ name: 'life-initrd', source: path.join(allowed, 'initrd'), format: 'raw' });
      await imported({
        name: 'life-disk',
        source: path.join(allowed, 'disk.qcow2'),
        boot: {
          kernel: 'life-kernel',
          initrd: 'life-initrd',
          cmdline: `console=ttyS0 quiet vagoth.boot=${tag}`,
        },
      });
    });

    afterAll(async () => {
      await h?.close();
      // Stopping a daemon ends its guests' qemu too; the pools' directories are the test's.
      await Promise.allSettled(hosts.map((x) => x.daemon.stop()));
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('is created, migrated with its disk, reprovisioned and decommissioned, and its wipes are on record', async () => {
      const name = `life-${tag}`;
      const { operation: created, vm } = await api.vms.create.mutate({
        name,
        vcpus: 1,
        memoryMiB: 256,
        image: 'life-disk',
        nics: [{ network, ip: '192.0.2.20' }],
        sshAuthorizedKeys: [KEY],
        userData: USER_DATA,
        placement: { host: 'life-a' },
      });
      expect(await waitForOperation(api, created, 300_000)).toMatchObject({ status: 'completed' });
      const mac = vm.definition.nics[0]!.mac;
      const log = path.join(dir, 'console', `${vm.id}.log`);
      /** What each boot must show: the seed's name and address, and what user-data found. */
      const booted = async (marker: 'absent' | 'present') => {
        await waitForConsole(
          log,
          new RegExp(`VAGOTH-SEED hostname=${name} instance=${vm.id} keys=1`),
        );
        await waitForConsole(
          log,
          new RegExp(`VAGOTH-NET iface=\\w+ mac=${mac} addr=192\\.0\\.2\\.20/24`),
        );
        await waitForConsole(log, new RegExp(`VAGOTH-USER-DATA marker=${marker} on ${name}`));
        if (marker === 'absent') await waitForConsole(log, /VAGOTH-USER-DATA marker=written/);
        // The power button works from here on: a cold move can shut the guest down cleanly.
        await waitForConsole(log, /VAGOTH-READY/);
      };
      await booted('absent');
      const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
      expect(await virsh(a.daemon.uri, 'domstate', name)).toContain('running');

      // Each boot truncates the log (append='off'); emptying it first keeps a line of the
      // previous boot from answering for the next.
      await writeFile(log, '');
      const { operation: migrated } = await api.vms.migrate.mutate({
        name,
        host: b.name,
        live: false,
      });
      expect(await waitForOperation(api, migrated, 300_000)).toMatchObject({
        status: 'completed',
      });
      expect(await api.vms.get.query({ name })).toMatchObject({ state: 'running', host: b.name });
      await booted('present');
      expect(await virsh(b.daemon.uri, 'domstate', name)).toContain('running');
      expect(await virsh(a.daemon.uri, 'list', '--all', '--name')).not.toContain(name);
      // The source keeps the image's copy (shared by the host's VMs), not the VM's volumes.
      expect((await poolVolumes(a.daemon.uri, pool)).filter((v) => v.includes(vm.id))).toEqual([]);

      await writeFile(log, '');
      const { operation: reprovisioned } = await api.vms.reprovision.mutate({ name });
      expect(await waitForOperation(api, reprovisioned, 300_000)).toMatchObject({
        status: 'completed',
      });
      await booted('absent');
      expect(await api.vms.get.query({ name })).toMatchObject({
        state: 'running',
        host: b.name,
        definition: { nics: [{ ip: '192.0.2.20', mac }] },
      });

      const { operation: decommissioned } = await api.vms.decommission.mutate({ name });
      expect(await waitForOperation(api, decommissioned, 300_000)).toMatchObject({
        status: 'completed',
      });
      const wipes = await api.vms.wipes.query({ id: vm.id });
      const volumes = [`vagoth-${vm.id}-disk0.img`, `vagoth-${vm.id}-seed.iso`];
      const seen = (host: string, operation: string) =>
        wipes
          .filter((w) => w.host === host && w.vmOperation === operation)
          .map((w) => w.volume)
          .sort();
      // Left behind on the source by the move, wiped by the reprovision before it built them
      // again, and at the end: each time the root and the seed.
      const all = JSON.stringify(
        wipes.map((w) => [
          w.host,
          w.vmOperation,
          w.reason,
          w.volume,
          w.method,
          w.sizeBytes,
          w.bytesWritten,
          w.check,
        ]),
      );
      expect(seen(a.name, 'migrate'), all).toEqual(volumes.sort());
      expect(seen(b.name, 'reprovision'), all).toEqual(volumes.sort());
      expect(seen(b.name, 'decommission'), all).toEqual(volumes.sort());
      expect(wipes, all).toHaveLength(6);
      for (const w of wipes) {
        expect(w.check, `${w.host} ${w.volume} ${w.reason}`).toMatchObject({ zero: true });
        // At least 64 blocks spread over the volume, or (a volume of a few MiB) all of it.
        if (w.check!.bytesRead !== w.sizeBytes) {
          expect(w.check!.blocks, `${w.host} ${w.volume}`).toBeGreaterThanOrEqual(64);
        }
        expect(w.bytesWritten, `${w.host} ${w.volume}`).toBeGreaterThan(0);
      }

      for (const image of ['life-disk', 'life-kernel', 'life-initrd']) {
        expect(await api.images.delete.mutate({ name: image })).toEqual({
          name: image,
          deleted: true,
        });
      }
      for (const x of hosts) expect(await poolVolumes(x.daemon.uri, pool)).toEqual([]);
    });
  },
);
