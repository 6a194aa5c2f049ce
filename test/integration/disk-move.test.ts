import { chmod, link, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { REPORT_ONLY } from '../../monitor/reconcile.ts';
import { open } from '../../native/libvirt/index.ts';
import { monitorCluster } from '../../workflows/index.ts';
import {
  nonZeroRanges,
  dirPoolDrivers,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { fileDigest, writePattern } from '../support/disk-pattern.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { findExecutable } from '../support/libvirtd.ts';

const missing = ['libvirtd', 'virsh', 'qemu-system-x86_64'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

/**
 * vms.migrate and hosts.maintenance as a user calls them, between two libvirt hosts that keep
 * real bytes: two private libvirtd daemons, each with a directory pool of the same name. Their
 * guests run under qemu's emulation (no KVM for an unprivileged daemon), with an empty disk;
 * each VM is stopped before its data is written, so it moves cold.
 */
describe.skipIf(skip)(
  skip ? `a VM's disks through a move (skipped: ${skip})` : "a VM's disks through a move",
  () => {
    const pool = `vagoth-dm-${randomUUID().slice(0, 8)}`;
    const daemons: Record<string, DirPoolDaemon> = {};
    let h: Harness;

    beforeAll(async () => {
      const [a, b] = await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)]);
      daemons['dm-a'] = a;
      daemons['dm-b'] = b;
      h = await startHarness({
        driverFactory: dirPoolDrivers(pool),
      });
      for (const [name, d] of Object.entries(daemons)) {
        await h.api.hosts.register({ name, driver: 'libvirt', uri: d.uri, diskGiB: 100 });
      }
    });
    afterAll(async () => {
      await h?.close();
      await Promise.allSettled(Object.values(daemons).map((d) => d.stop()));
    });

    async function done(call: Promise<{ operation: Parameters<typeof settle>[1] }>) {
      const outcome = await settle(h, (await call).operation);
      expect(outcome).toMatchObject({ status: 'completed', error: null });
    }

    /** A stopped VM on `host` whose volume holds the pattern; its file, digest and a link to it. */
    async function stoppedWithData(name: string, host: string) {
      const { operation } = await h.api.vms.create({
        name,
        vcpus: 1,
        memoryMiB: 64,
        diskGiB: 1,
        placement: { host },
      });
      expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      await done(h.api.vms.stop({ name }));
      const volume = (await h.api.vms.get({ name })).keys
        .find((k) => k.startsWith('vol:'))!
        .split('/')[1]!;
      const file = path.join(daemons[host]!.poolDir, volume);
      await writePattern(file);
      // A second name for the volume's inode: what its deletion leaves, to read afterwards.
      const kept = path.join(daemons[host]!.linkDir, volume);
      await link(file, kept);
      return { volume, file, kept, digest: await fileDigest(file) };
    }

    /** The VM is on `host`, stopped, its volume there byte for byte; the source's zeroed and gone. */
    async function movedIntact(
      name: string,
      host: string,
      disk: Awaited<ReturnType<typeof stoppedWithData>>,
    ) {
      const vm = await h.api.vms.get({ name });
      expect(vm).toMatchObject({ host, state: 'stopped' });
      expect(await fileDigest(path.join(daemons[host]!.poolDir, disk.volume))).toBe(disk.digest);
      await expect(stat(disk.file)).rejects.toThrow();
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
    }

    it('vms.migrate moves a stopped VM with every byte of its disk, then wipes the source', async () => {
      const disk = await stoppedWithData('dm-1', 'dm-a');
      await done(h.api.vms.migrate({ name: 'dm-1', host: 'dm-b' }));
      await movedIntact('dm-1', 'dm-b', disk);
      // And it boots there, on its own disk.
      await done(h.api.vms.start({ name: 'dm-1' }));
      expect(await h.api.vms.get({ name: 'dm-1' })).toMatchObject({
        host: 'dm-b',
        state: 'running',
      });
      await done(h.api.vms.decommission({ name: 'dm-1' }));
    });

    it("hosts.maintenance drains a host with its VMs' disks intact", async () => {
      const disk = await stoppedWithData('dm-2', 'dm-b');
      const report = await h.api.hosts.maintenance({ name: 'dm-b' });
      expect(report).toMatchObject({ moved: [{ vm: 'dm-2', to: 'dm-a' }], stayed: [], failed: [] });
      await movedIntact('dm-2', 'dm-a', disk);
      await h.api.hosts.activate({ name: 'dm-b' });
      await done(h.api.vms.decommission({ name: 'dm-2' }));
    });

    it('a failed move wipes what it made on the target; the VM and its disk stay on the source', async () => {
      const disk = await stoppedWithData('dm-3', 'dm-a');
      // The target has a domain of that name that is not vagoth's: the move's define there
      // is refused, after its volume was made (and filled) on the target.
      const conn = await open(daemons['dm-b']!.uri);
      const squatter = await conn.defineDomainXML(
        "<domain type='qemu'><name>dm-3</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>" +
          "<os><type arch='x86_64'>hvm</type></os></domain>",
      );
      try {
        const { operation } = await h.api.vms.migrate({ name: 'dm-3', host: 'dm-b' });
        expect(await settle(h, operation)).toMatchObject({ status: 'failed' });
        const vm = await h.api.vms.get({ name: 'dm-3' });
        expect(vm).toMatchObject({ host: 'dm-a', state: 'stopped' });
        expect(vm.keys.filter((k) => k.startsWith('vol:'))).toEqual([
          `vol:dm-a:${pool}/${disk.volume}`,
        ]);
        await expect(stat(path.join(daemons['dm-b']!.poolDir, disk.volume))).rejects.toThrow();
        expect(await fileDigest(disk.file)).toBe(disk.digest);
      } finally {
        await squatter.undefine();
        squatter.free();
        await conn.close();
      }
      await done(h.api.vms.decommission({ name: 'dm-3' }));
      await expect(stat(disk.file)).rejects.toThrow();
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
    });

    it('a move whose copy fails after it defined the VM on the target leaves nothing there, and the source whole', async () => {
      const disk = await stoppedWithData('dm-5', 'dm-a');
      // The source's disk cannot be read (its daemon runs unprivileged): every attempt fails
      // in the copy, after the move made the volume on the target and defined the VM there.
      const { mode } = await stat(disk.file);
      await chmod(disk.file, 0);
      try {
        const { operation } = await h.api.vms.migrate({ name: 'dm-5', host: 'dm-b' });
        expect(await settle(h, operation)).toMatchObject({ status: 'failed' });
      } finally {
        await chmod(disk.file, mode);
      }
      const vm = await h.api.vms.get({ name: 'dm-5' });
      expect(vm).toMatchObject({ host: 'dm-a', state: 'stopped' });
      expect(vm.keys.filter((k) => k.startsWith('vol:'))).toEqual([
        `vol:dm-a:${pool}/${disk.volume}`,
      ]);
      const target = new LibvirtDriver({ uri: daemons['dm-b']!.uri, pools: [pool] });
      expect(await target.info('dm-5').finally(() => target.close())).toBeNull();
      await expect(stat(path.join(daemons['dm-b']!.poolDir, disk.volume))).rejects.toThrow();
      expect(await fileDigest(disk.file)).toBe(disk.digest);
      // And it moves once its disk can be read again.
      await done(h.api.vms.migrate({ name: 'dm-5', host: 'dm-b' }));
      await movedIntact('dm-5', 'dm-b', disk);
      await done(h.api.vms.decommission({ name: 'dm-5' }));
    }, 150_000);

    it('a VM the monitor took off a host that lost it keeps its volume there on record, until decommission wipes it', async () => {
      const disk = await stoppedWithData('dm-4', 'dm-a');
      const vm = await h.api.vms.get({ name: 'dm-4' });
      // Its domain goes behind vagoth's back; its volume stays.
      const back = new LibvirtDriver({ uri: daemons['dm-a']!.uri, pools: [pool] });
      await back.undefine({ id: vm.id, name: 'dm-4' }).finally(() => back.close());
      await h.temporal.workflow.execute(monitorCluster, {
        args: [{ hosts: ['dm-a'], policies: { ...REPORT_ONLY, missing: 'unassign' } }],
        taskQueue: h.taskQueue,
        workflowId: `monitor-dm-${randomUUID()}`,
      });
      const lost = await h.api.vms.get({ name: 'dm-4' });
      expect(lost).toMatchObject({ host: null, state: 'failed' });
      expect(lost.keys).toContain(`vol:dm-a:${pool}/${disk.volume}`);
      // The host cannot be forgotten while it holds a volume on record.
      await expect(h.api.hosts.remove({ name: 'dm-a' })).rejects.toThrow(/volume/);
      expect(await fileDigest(disk.file)).toBe(disk.digest);

      await done(h.api.vms.decommission({ name: 'dm-4' }));
      await expect(stat(disk.file)).rejects.toThrow();
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
      await expect(h.api.vms.get({ name: 'dm-4' })).rejects.toThrow();
    });
  },
);
