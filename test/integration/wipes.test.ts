import { execFile } from 'node:child_process';
import { link, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WipeRecord } from '../../drivers/index.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { PROBE } from '../../drivers/libvirt/wipe.ts';
import {
  nonZeroRanges,
  dirPoolDrivers,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { writePattern } from '../support/disk-pattern.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { refusal } from '../support/refusal.ts';

const missing = ['libvirtd', 'virsh'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;
const run = promisify(execFile);
const MiB = 1024 ** 2;
const GiB = 1024 * MiB;

/** The bytes a wipe of a thin volume writes: every PROBE that `spots` put data in. */
function dataBytes(spots: { offset: number; length: number }[]): number {
  const probes = new Set<number>();
  for (const { offset, length } of spots) {
    for (let p = Math.floor(offset / PROBE); p * PROBE < offset + length; p++) probes.add(p);
  }
  return probes.size * PROBE;
}

/** Random bytes in every block of `file`; its size, every byte of which a wipe writes. */
async function fillRandom(file: string): Promise<number> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    for (let o = 0; o < size; o += 8 * MiB) {
      const n = Math.min(8 * MiB, size - o);
      await handle.write(randomBytes(n), 0, n, o);
    }
    await handle.sync();
    return size;
  } finally {
    await handle.close();
  }
}

/**
 * What vagoth records of each volume it wipes, read back as a user would (vms.wipes), on a
 * libvirt host that keeps real bytes: a private libvirtd with a directory pool. Wipes are
 * capped (VAGOTH_LIBVIRT_WIPE_MIB_S) so a test can write to a volume while it is wiped.
 */
describe.skipIf(skip)(
  skip ? `a record of every wipe (skipped: ${skip})` : 'a record of every wipe',
  () => {
    const pool = `vagoth-wp-${randomUUID().slice(0, 8)}`;
    let daemon: DirPoolDaemon;
    let h: Harness;

    beforeAll(async () => {
      daemon = await startDirPoolDaemon(pool);
      h = await startHarness({
        driverFactory: dirPoolDrivers(pool, { wipeMiBPerSecond: 256 }),
      });
      await h.api.hosts.register({
        name: 'wp-a',
        driver: 'libvirt',
        uri: daemon.uri,
        diskGiB: 100,
      });
    });
    afterAll(async () => {
      await h?.close();
      await daemon?.stop();
    });

    /**
     * A VM defined on wp-a with a 1 GiB volume holding data: scattered, a guest's disk far from
     * full (or `dense`, random bytes in every block); its file, a second link to it, and how
     * many bytes a wipe writes, every PROBE that holds data (all of a dense one).
     */
    async function withData(name: string, dense = false) {
      const { operation } = await h.api.vms.create({
        name,
        vcpus: 1,
        memoryMiB: 64,
        diskGiB: 1,
        placement: { host: 'wp-a' },
      });
      expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      const vm = await h.api.vms.get({ name });
      const volume = vm.keys.find((k) => k.startsWith('vol:'))!.split('/')[1]!;
      const file = path.join(daemon.poolDir, volume);
      const toWrite = dense ? await fillRandom(file) : dataBytes(await writePattern(file));
      // A second name for the volume's inode: what its deletion leaves, to read afterwards.
      const kept = path.join(daemon.linkDir, volume);
      await link(file, kept);
      return { id: vm.id, volume, file, kept, toWrite };
    }

    it('a decommission overwrites every allocated byte, leaves a thin volume thin, checks it, and its record outlives the VM', async () => {
      const disk = await withData('wp-1');
      expect(disk.toWrite).toBeLessThan(GiB / 8);
      const { operation } = await h.api.vms.decommission({ name: 'wp-1' });
      expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      expect((await refusal(h.api.vms.get({ name: 'wp-1' }))).code).toBe('NOT_FOUND');
      await expect(stat(disk.file)).rejects.toThrow();
      // Overwritten, not truncated: every stretch that held data was written with zeros, and
      // no hole was filled in (on an overcommitted pool that could run it out of space).
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
      const { size, blocks } = await stat(disk.kept);
      expect(size).toBe(GiB);
      expect(blocks * 512).toBeGreaterThanOrEqual(disk.toWrite);
      expect(blocks * 512).toBeLessThanOrEqual(disk.toWrite + MiB);

      const wipes = await h.api.vms.wipes({ name: 'wp-1' });
      expect(wipes).toEqual([
        {
          vmId: disk.id,
          vmName: 'wp-1',
          host: 'wp-a',
          pool,
          volume: disk.volume,
          reason: 'deprovision',
          vmOperation: 'decommission',
          method: 'stream',
          sizeBytes: GiB,
          bytesWritten: disk.toWrite,
          resumedFrom: 0,
          durationMs: expect.any(Number),
          // The first and last MiB, and 64 blocks of 64 KiB between them.
          check: { blocks: 66, bytesRead: 6 * MiB, zero: true, nonZeroAt: null },
          at: expect.any(String),
          operation: expect.stringMatching(/^vm:wp-1\//),
        },
      ]);
      // Capped at 256 MiB/s of zeros written.
      expect(wipes[0]!.durationMs).toBeGreaterThanOrEqual((disk.toWrite / (256 * MiB)) * 900);
      // By id too, and for a reader.
      expect(await h.api.vms.wipes({ id: disk.id })).toEqual(wipes);
      const reader = await h.callerWith('reader');
      expect(await reader.api.vms.wipes({ name: 'wp-1' })).toEqual(wipes);
      // History, not a table to tidy: even the database's owner cannot edit or drop a record.
      await expect(h.sql`DELETE FROM volume_wipes`).rejects.toThrow(/append-only/);
      await expect(h.sql`UPDATE volume_wipes SET nonzero_at = NULL`).rejects.toThrow(/append-only/);
    });

    it('a thin volume whose data the guest zeroed in place (unwritten extents, read as holes) is zeroed whole', async () => {
      const disk = await withData('wp-z');
      // 4 MiB of data, then zeroed as a guest's write-zeroes does: the blocks stay allocated,
      // holding their old bytes on disk, while the file system reports a hole there.
      const handle = await open(disk.file, 'r+');
      await handle.write(randomBytes(4 * MiB), 0, 4 * MiB, 100 * MiB);
      await handle.sync();
      await handle.close();
      await run('fallocate', [
        '--zero-range',
        '--offset',
        String(100 * MiB),
        '--length',
        String(4 * MiB),
        disk.file,
      ]);
      expect((await run('filefrag', ['-v', disk.kept])).stdout).toMatch(/unwritten/);

      const { operation } = await h.api.vms.decommission({ name: 'wp-z' });
      expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      expect(await h.api.vms.wipes({ name: 'wp-z' })).toMatchObject([
        { method: 'stream', bytesWritten: GiB, check: { zero: true } },
      ]);
      // Every block of the inode written with zeros, once written back: none left unwritten,
      // holding its old bytes.
      await run('sync', ['--file-system', disk.kept]);
      expect((await run('filefrag', ['-v', disk.kept])).stdout).not.toMatch(/unwritten/);
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
    });

    it.each(['qed', 'vmdk', 'vpc'])(
      'a raw disk whose guest wrote a %s header over its first bytes is still zeroed whole',
      async (format) => {
        const disk = await withData(`wp-h-${format}`, true);
        // A header claiming a small disk, as a guest may write onto its own raw disk: libvirt
        // reads the file's header and reports the size it claims.
        const header = path.join(daemon.linkDir, `header.${format}`);
        await run('qemu-img', ['create', '-f', format, header, '1M']);
        await run('dd', [
          `if=${header}`,
          `of=${disk.file}`,
          'conv=notrunc',
          'count=1',
          'bs=64k',
          'status=none',
        ]);
        // libvirt reads headers again when the pool is refreshed (as on a daemon's restart).
        await run('virsh', ['-c', daemon.uri, 'pool-refresh', pool]);
        const { operation } = await h.api.vms.decommission({ name: `wp-h-${format}` });
        expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
        expect(await nonZeroRanges(disk.kept)).toEqual([]);
        const [wipe] = await h.api.vms.wipes({ name: `wp-h-${format}` });
        expect(wipe).toMatchObject({ sizeBytes: GiB, check: { zero: true } });
      },
    );

    it('a volume written to while it is wiped fails the check: the decommission fails, the volume stays', async () => {
      // Dense: zeros over all of it at 256 MiB/s take 4 s, time to write behind them.
      const disk = await withData('wp-2', true);
      expect(disk.toWrite).toBe(GiB);
      const { operation } = await h.api.vms.decommission({ name: 'wp-2' });
      // Once the zeros are past the start, something writes there again.
      for (let i = 0; (await nonZeroRanges(disk.kept, 64 * 1024)).length > 0; i++) {
        expect(i).toBeLessThan(400);
        await new Promise((r) => setTimeout(r, 25));
      }
      const handle = await open(disk.file, 'r+');
      await handle.write(Buffer.from('still here'), 0, 10, 4096);
      await handle.sync();
      await handle.close();

      const outcome = await settle(h, operation);
      expect(outcome).toMatchObject({ status: 'failed' });
      expect(JSON.stringify(outcome)).toMatch(/byte 4096 is not zero; the volume is kept/);
      expect(JSON.stringify(outcome)).toMatch(/WipeUnverified/);
      expect((await stat(disk.file)).size).toBe(GiB);
      expect(await h.api.vms.get({ name: 'wp-2' })).toMatchObject({ state: 'decommissioning' });
      expect(await h.api.vms.wipes({ name: 'wp-2' })).toMatchObject([
        {
          volume: disk.volume,
          method: 'stream',
          check: { zero: false, nonZeroAt: 4096 },
        },
      ]);

      // Looked at, the decommission retried: wiped once more, checked, gone.
      const again = await h.api.operations.retry({ name: 'wp-2' });
      expect(await settle(h, again.operation)).toMatchObject({ status: 'completed' });
      await expect(stat(disk.file)).rejects.toThrow();
      expect(await nonZeroRanges(disk.kept)).toEqual([]);
      expect(await h.api.vms.wipes({ name: 'wp-2' })).toMatchObject([
        { check: { zero: false, nonZeroAt: 4096 } },
        { method: 'stream', bytesWritten: GiB, check: { zero: true } },
      ]);
    });

    it('a volume a lost attempt left half-made is wiped, not merely deleted, before it is made again', async () => {
      const driver = new LibvirtDriver({ uri: daemon.uri, pools: [pool] });
      try {
        const spec = {
          id: randomUUID(),
          name: 'wp-left',
          definition: { vcpus: 1, memoryMiB: 64, diskGiB: 1, nics: [], placement: {} },
        };
        const volumes = driver.volumesFor(spec);
        await driver.provision({ ...spec, volumes });
        const file = path.join(daemon.poolDir, volumes[0]!.name);
        const toWrite = dataBytes(await writePattern(file));
        const kept = path.join(daemon.linkDir, volumes[0]!.name);
        await link(file, kept);
        // The next attempt, with no progress on record, cannot know the volume is whole.
        const records: WipeRecord[] = [];
        await driver.provision(
          { ...spec, volumes },
          { onWiped: async (r) => void records.push(r) },
        );
        expect(records).toMatchObject([
          {
            volume: volumes[0],
            method: 'stream',
            bytesWritten: toWrite,
            check: { nonZeroAt: null },
          },
        ]);
        expect((await stat(file)).ino).not.toBe((await stat(kept)).ino);
        expect(await nonZeroRanges(kept)).toEqual([]);
        expect(await nonZeroRanges(file)).toEqual([]);
        await driver.deprovision({ ...spec, volumes });
        await expect(stat(file)).rejects.toThrow();
      } finally {
        await driver.close();
      }
    });

    it('answers NOT_FOUND for a VM no one ever had, and BAD_REQUEST naming the field', async () => {
      expect((await refusal(h.api.vms.wipes({ name: 'wp-never' }))).code).toBe('NOT_FOUND');
      expect((await refusal(h.api.vms.wipes({ id: randomUUID() }))).code).toBe('NOT_FOUND');
      const both = await refusal(h.api.vms.wipes({ name: 'wp-1', id: randomUUID() }));
      expect(both.code).toBe('BAD_REQUEST');
      expect(both.message).toMatch(/exactly one of id, name/);
      const bad = await refusal(h.api.vms.wipes({ id: '../etc' }));
      expect(bad.message).toMatch(/id.*UUID/);
    });
  },
);
