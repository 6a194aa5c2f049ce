import { randomUUID } from 'node:crypto';
import { link, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainSpec, Progress, VolumeRef } from '../../drivers/driver.ts';
import type { HostAddress } from '../../registry/types.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { uploadWhenFree } from '../../drivers/libvirt/errors.ts';
import { copyStep } from '../../drivers/libvirt/volume-copy.ts';
import { open, type StorageVol } from '../../native/libvirt/index.ts';
import { writeMarks } from '../realvm/host.ts';
import {
  nonZeroRanges,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { fileDigest, writePattern } from '../support/disk-pattern.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { vmSpec } from '../support/libvirt-hosts.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const missing = ['libvirtd', 'virsh', 'qemu-system-x86_64'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

/**
 * Two libvirt hosts on one machine: two private daemons, each with a real directory pool of
 * the same name. Their session qemu drivers define domains; a stopped one moves cold.
 */
describe.skipIf(skip)(
  skip ? `disks move with a VM (skipped: ${skip})` : 'disks move with a VM',
  () => {
    const pool = `vagoth-move-${randomUUID().slice(0, 8)}`;
    let a: DirPoolDaemon;
    let b: DirPoolDaemon;
    let from: LibvirtDriver;
    let to: LibvirtDriver;
    const target = (): HostAddress => ({ name: 'b', driver: 'libvirt', uri: b.uri });

    beforeAll(async () => {
      [a, b] = await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)]);
      const options = { pools: [pool], domainType: 'qemu' };
      from = new LibvirtDriver({ uri: a.uri, ...options });
      to = new LibvirtDriver({ uri: b.uri, ...options });
    });
    afterAll(async () => {
      await Promise.allSettled([from?.close(), to?.close()]);
      await Promise.allSettled([a?.stop(), b?.stop()]);
    });

    /** A stopped VM with one volume of `diskGiB` on host a holding the pattern, and a fresh one on b. */
    async function stoppedVmWithData(diskGiB = 1) {
      const base = vmSpec({ diskGiB });
      const volumes = from.volumesFor(base);
      const spec: DomainSpec = { ...base, volumes };
      await from.provision(spec);
      await from.define(spec);
      const [root] = volumes as [VolumeRef];
      const file = path.join(a.poolDir, root.name);
      await writePattern(file);
      await to.provision(spec);
      return { spec, root, file, moved: path.join(b.poolDir, root.name) };
    }

    it("copies every byte of a stopped VM's volume, holes kept as holes, and then the source may be wiped", async () => {
      const { spec, root, file, moved } = await stoppedVmWithData();
      const before = await fileDigest(file);
      const steps: string[] = [];
      const result = await from.migrate(spec, target(), {
        onProgress: (p) => steps.push(p.step),
      });
      expect(result).toEqual({ live: false });
      expect(steps).toContain(copyStep(root));
      expect(await fileDigest(moved)).toBe(before);
      expect(await fileDigest(file)).toBe(before); // the move itself never touches the source
      // The holes were not written: the copy is about as sparse as the pattern.
      expect((await stat(moved)).blocks * 512).toBeLessThan(64 * MiB);
      expect((await to.info(spec.name))?.state).toBe('stopped');
      expect(await from.info(spec.name)).toBeNull();

      // The wipe after the move: zeroed, then deleted.
      const kept = path.join(a.linkDir, `${root.name}.kept`);
      await link(file, kept);
      await from.deprovision({ ...spec, volumes: spec.volumes! }, { movedAway: true });
      await expect(stat(file)).rejects.toThrow();
      expect(await nonZeroRanges(kept)).toEqual([]);
      expect(await fileDigest(moved)).toBe(before);
    });

    it('goes on from the offset an earlier attempt reported, and copies again in full when the digests differ', async () => {
      const { spec, root, file, moved } = await stoppedVmWithData();
      const before = await fileDigest(file);
      // What an attempt lost at 40 MiB left: the bytes before it copied.
      await from
        .migrate(spec, target(), {
          onProgress: (p) => {
            if (p.step === copyStep(root) && p.done >= 40 * MiB) throw new Error('worker lost');
          },
        })
        .catch(() => undefined);
      expect(await to.info(spec.name)).not.toBeNull();
      // A canary below the offset on the target: a copy that started over would overwrite it,
      // so the digest check must catch it and copy again in full.
      const canary = { offset: 5 * MiB, text: 'VAGOTH-CANARY' };
      await writeMarks(moved, [canary]);
      const resumeFrom: Progress = {
        step: copyStep(root),
        done: 40 * MiB,
        total: GiB,
        volume: root,
      };
      const reported: Progress[] = [];
      await from.migrate(spec, target(), { resumeFrom, onProgress: (p) => reported.push(p) });
      const copies = reported.filter((p) => p.step === copyStep(root));
      expect(copies[0]!.done).toBe(40 * MiB);
      // The canary made the digests differ: copied again in full, from 0, and then identical.
      expect(copies.some((p) => p.done < 40 * MiB)).toBe(true);
      expect(await fileDigest(moved)).toBe(before);
      expect(await from.info(spec.name)).toBeNull();
    });

    it('lands every one of many uploads to one volume under way at once', async () => {
      // libvirt counts a volume "in use" while it opens an upload's stream: uploads started
      // together meet there ("still in use"), as a copy's lanes and an aborted attempt's last
      // chunk beside its retry do. Each must wait its turn, not fail the move.
      const { root } = await stoppedVmWithData();
      const conn = await open(b.uri);
      try {
        const vol: StorageVol = await (
          await conn.lookupStoragePoolByName(pool)
        ).lookupVolumeByName(root.name);
        const chunk = 64 * 1024;
        const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(chunk, (i % 250) + 1));
        const raw = await Promise.allSettled(chunks.map((data, i) => vol.upload(i * chunk, data)));
        const collided = raw.filter((r) => r.status === 'rejected').length;
        await Promise.all(
          chunks.map((data, i) => uploadWhenFree(() => vol.upload(i * chunk, data))),
        );
        const landed = await vol.download(0, chunks.length * chunk);
        expect(landed.equals(Buffer.concat(chunks))).toBe(true);
        console.info(`uploads at once: ${collided} of ${chunks.length} raw ones collided`);
      } finally {
        await conn.close();
      }
    });

    it('leaves volumes of a shared pool where they are, unwiped', async () => {
      const options = { pools: [pool], sharedPools: [pool], domainType: 'qemu' };
      const sharedFrom = new LibvirtDriver({ uri: a.uri, ...options });
      try {
        const { spec, file } = await stoppedVmWithData();
        const before = await fileDigest(file);
        const steps: string[] = [];
        await sharedFrom.migrate(spec, target(), { onProgress: (p) => steps.push(p.step) });
        expect(steps.filter((s) => s.includes('copy'))).toEqual([]);
        await sharedFrom.deprovision({ ...spec, volumes: spec.volumes! }, { movedAway: true });
        expect(await fileDigest(file)).toBe(before);
      } finally {
        await sharedFrom.close();
      }
    });
  },
);
