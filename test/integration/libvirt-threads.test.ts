import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainSpec, VolumeRef } from '../../drivers/driver.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { open, type Connection, type StorageVol } from '../../native/libvirt/index.ts';
import { startDirPoolDaemon, type DirPoolDaemon } from '../support/dir-pool-daemon.ts';
import { findExecutable } from '../support/libvirtd.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const missing = ['libvirtd', 'virsh', 'fallocate'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

/** A promise and whether it has settled yet. */
function watched<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  const tracked = promise.finally(() => (settled = true));
  // Awaited by the test; this only keeps an early rejection from counting as unhandled.
  tracked.catch(() => {});
  return { promise: tracked, settled: () => settled };
}

/** Polls until `ready` or `gaveUp`; both must keep off the thread pool (hence statSync). */
async function until(ready: () => boolean, gaveUp: () => boolean): Promise<void> {
  while (!ready() && !gaveUp()) await new Promise((r) => setTimeout(r, 20));
}

// Real slow work on a directory pool of a libvirtd of the test's own: more slow calls in
// flight than libuv's pool has threads (4), and short calls that must not queue behind them.
// The tests assert an order, not a speed: the short calls answer while every slow call is
// still running.
describe.skipIf(skip)(
  skip ? `long libvirt calls (skipped: ${skip})` : 'long libvirt calls beside short ones',
  () => {
    const pool = `vagoth-threads-${randomUUID().slice(0, 8)}`;
    let host: DirPoolDaemon;
    let conn: Connection;
    let other: Connection;

    beforeAll(async () => {
      host = await startDirPoolDaemon(pool);
      conn = await open(host.uri);
      other = await open(host.uri);
    });
    afterAll(async () => {
      await Promise.allSettled([conn?.close(), other?.close()]);
      await host?.stop();
    });

    it('answers a monitor poll and reads a file while six uploads of zeros run', async () => {
      const storage = await conn.lookupStoragePoolByName(pool);
      const size = 256 * MiB;
      const vols: StorageVol[] = [];
      for (let i = 0; i < 6; i++) {
        const xml = `<volume><name>upload-${i}.img</name><capacity>${size}</capacity><allocation>0</allocation></volume>`;
        vols.push(await storage.createVolumeXML(xml));
      }
      const files = vols.map((_, i) => path.join(host.poolDir, `upload-${i}.img`));
      const uploads = vols.map((v) => watched(v.uploadZeros(0, size)));
      const anySettled = () => uploads.some((u) => u.settled());
      // Every upload has written bytes: all six are in flight at once.
      await until(() => files.every((f) => statSync(f).blocks > 0), anySettled);

      const [node, domains, text] = await Promise.all([
        conn.nodeGetInfo(),
        other.listAllDomains(),
        readFile(import.meta.filename, 'utf8'),
      ]);
      const stillRunning = uploads.filter((u) => !u.settled()).length;
      expect(node.cpus).toBeGreaterThan(0);
      expect(domains).toEqual([]);
      expect(text).toContain('six uploads of zeros');
      expect(stillRunning).toBe(6);

      await Promise.all(uploads.map((u) => u.promise));
      for (const f of files) expect(statSync(f).blocks * 512).toBeGreaterThanOrEqual(size);
      for (const v of vols) await v.delete();
    });

    // Six, more than libvirtd serves at once from one client (max_client_requests, 5): the
    // wipes fill the driver's main connection, and the poll has a connection of its own. (The
    // sixth's own lookups may queue behind the first five: only five are sure to be in flight.)
    it('gives a libvirt host’s status while six of its volumes are wiped', async () => {
      const driver = new LibvirtDriver({ uri: host.uri, pools: [pool], wipe: 'libvirt' });
      try {
        const vms = await Promise.all(
          Array.from({ length: 6 }, async (_, i) => {
            const spec: DomainSpec = {
              id: randomUUID(),
              name: `threads-${i}`,
              definition: { vcpus: 1, memoryMiB: 64, diskGiB: 1, nics: [], placement: {} },
            };
            const vm = { ...spec, volumes: driver.volumesFor(spec) };
            await driver.provision(vm);
            // Allocated blocks: libvirt's wipe writes every byte of a volume that is not sparse.
            const [volume] = vm.volumes as [VolumeRef];
            await run('fallocate', ['-l', String(GiB), path.join(host.poolDir, volume.name)]);
            return vm;
          }),
        );
        // libvirt's wipe reports twice: as it starts (done 0) and once it has ended.
        let wiping = 0;
        let wiped = 0;
        const deprovisions = vms.map((vm) =>
          watched(
            driver.deprovision(vm, {
              onProgress: (p) => {
                if (!p.step.startsWith('wipe')) return;
                if (p.done === 0) wiping++;
                else if (p.done === p.total) wiped++;
              },
            }),
          ),
        );
        const inFlight = () => wiping - wiped;
        await until(
          () => inFlight() >= 5,
          () => deprovisions.some((d) => d.settled()),
        );
        // Five wipes in flight fill the slots libvirtd gives the main connection: a poll queued
        // behind them could be answered only once one of them ended. So a poll answered while
        // five were in flight and none ended since it was asked did not queue. That is an
        // order, not a speed; a wipe may still end by chance while a poll is out (they take
        // seconds, a poll milliseconds): then it asks again, while five are still in flight.
        const polls: Array<{ inFlight: number; endedMeanwhile: number }> = [];
        while (inFlight() >= 5 && !polls.some((p) => p.endedMeanwhile === 0)) {
          const asked = { inFlight: inFlight(), wiped };
          const status = await driver.status();
          expect(status.capacity.vcpus).toBeGreaterThan(0);
          polls.push({ inFlight: asked.inFlight, endedMeanwhile: wiped - asked.wiped });
        }
        expect(
          polls.some((p) => p.endedMeanwhile === 0),
          `every poll waited for a wipe to end: ${JSON.stringify(polls)}`,
        ).toBe(true);
        await Promise.all(deprovisions.map((d) => d.promise));
        expect(wiped).toBe(6);
      } finally {
        await driver.close();
      }
    });
  },
);
