import { randomUUID } from 'node:crypto';
import { link, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DriverError,
  type DomainSpec,
  type Progress,
  type VolumeRef,
  type WipeRecord,
} from '../../drivers/driver.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { PROBE, type WipeMethod } from '../../drivers/libvirt/wipe.ts';
import {
  nonZeroRanges,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { poolVolumes, writeMarks, type Mark } from './host.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const missing = ['libvirtd', 'virsh'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

type Vm = DomainSpec & { volumes: VolumeRef[] };

// What a deprovision does with the progress an earlier attempt heartbeated (`resumeFrom`), on
// a directory pool with real bytes: it goes on from a wipe's offset only on the very volume
// that progress names, and starts over on anything it cannot match.
describe.skipIf(skip)(
  skip ? `resuming a wipe (skipped: ${skip})` : 'resuming a wipe from its progress',
  () => {
    const pool = `vagoth-resume-${randomUUID().slice(0, 8)}`;
    let host: DirPoolDaemon;
    const drivers = new Map<WipeMethod, LibvirtDriver>();
    const file = (v: VolumeRef) => path.join(host.poolDir, v.name);

    beforeAll(async () => {
      host = await startDirPoolDaemon(pool);
      for (const wipe of ['libvirt', 'stream'] as const) {
        drivers.set(wipe, new LibvirtDriver({ uri: host.uri, pools: [pool], wipe }));
      }
    });
    // The links keep each wiped volume's blocks: a gigabyte a test.
    afterEach(async () => {
      for (const name of await readdir(host.linkDir)) await rm(path.join(host.linkDir, name));
    });
    afterAll(async () => {
      await Promise.allSettled([...drivers.values()].map((d) => d.close()));
      await host?.stop();
    });

    /** A 1 GiB volume written all through, with a hard link that outlives its deletion. */
    async function filledVm(): Promise<{ vm: Vm; kept: string }> {
      const driver = drivers.get('stream')!;
      const spec: DomainSpec = {
        id: randomUUID(),
        name: `resume-${randomUUID().slice(0, 8)}`,
        definition: { vcpus: 1, memoryMiB: 64, diskGiB: 1, nics: [], placement: {} },
      };
      const vm = { ...spec, volumes: driver.volumesFor(spec) };
      await driver.provision(vm);
      const data: Mark[] = [];
      // In every PROBE: a thin volume's wipe writes where it finds data, so here all of it.
      for (let offset = 0; offset < GiB; offset += PROBE) {
        data.push({ offset, text: `VAGOTH-DATA-${offset}` });
      }
      await writeMarks(file(vm.volumes[0]!), data);
      const kept = path.join(host.linkDir, vm.id);
      await link(file(vm.volumes[0]!), kept);
      return { vm, kept };
    }

    const wipeOf = (vm: Vm, done: number, over: Partial<Progress> = {}): Progress => ({
      step: `wipe ${pool}/${vm.volumes[0]!.name}`,
      done,
      total: GiB,
      volume: vm.volumes[0]!,
      ...over,
    });

    /**
     * Deprovisions `vm` resuming from `resumeFrom`, a progress that lies (the bytes before its
     * offset were never zeroed): the read-back finds them, so the call fails `unwiped` at byte
     * 0 and keeps the volume. Answers what the wipe recorded; wipes the volume for good after.
     */
    async function lyingResume(method: WipeMethod, vm: Vm, resumeFrom: Progress) {
      const seen: Progress[] = [];
      const records: WipeRecord[] = [];
      const err = await drivers
        .get(method)!
        .deprovision(vm, {
          resumeFrom,
          onProgress: (p) => seen.push(p),
          onWiped: async (r) => void records.push(r),
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(DriverError);
      expect(err).toMatchObject({ kind: 'unwiped', message: expect.stringMatching(/byte 0 /) });
      expect(await poolVolumes(host.uri, pool)).toContain(vm.volumes[0]!.name);
      return { seen, records, cleanUp: () => drivers.get('stream')!.deprovision(vm) };
    }

    it('streams from the offset the progress names, never writing before it; the read-back finds what lay there', async () => {
      const { vm, kept } = await filledVm();
      const { seen, records, cleanUp } = await lyingResume('stream', vm, wipeOf(vm, 512 * MiB));
      // What lay before the offset was the earlier attempt's to zero: it is still there.
      const left = await nonZeroRanges(kept);
      expect(left.length).toBeGreaterThan(0);
      expect(left.every((r) => r.end <= 512 * MiB)).toBe(true);
      expect(seen[0]).toEqual(wipeOf(vm, 512 * MiB));
      expect(seen.at(-1)).toEqual(wipeOf(vm, GiB));
      expect(records).toMatchObject([
        {
          method: 'stream',
          resumedFrom: 512 * MiB,
          bytesWritten: 512 * MiB,
          check: { nonZeroAt: 0 },
        },
      ]);
      await cleanUp();
      expect(await nonZeroRanges(kept)).toEqual([]);
    });

    it('goes on streaming from a partial offset even where libvirt’s own wipe is the method', async () => {
      const { vm, kept } = await filledVm();
      const { cleanUp } = await lyingResume('libvirt', vm, wipeOf(vm, GiB - 64 * MiB));
      const left = await nonZeroRanges(kept);
      expect(left.length).toBeGreaterThan(0);
      expect(left.every((r) => r.end <= GiB - 64 * MiB)).toBe(true);
      await cleanUp();
    });

    it('reads back, rather than trusts, a volume an earlier attempt reported wiped', async () => {
      const { vm, kept } = await filledVm();
      const { seen, records, cleanUp } = await lyingResume('stream', vm, wipeOf(vm, GiB));
      expect(seen).toEqual([wipeOf(vm, GiB)]);
      expect(records).toMatchObject([{ method: 'check-only', resumedFrom: GiB, bytesWritten: 0 }]);
      expect((await nonZeroRanges(kept)).length).toBeGreaterThan(0);
      await cleanUp();
    });

    // Each of these is a progress the driver cannot match to this volume as it is: it zeroes
    // every byte, as a first attempt would.
    const unmatched: Array<[string, (vm: Vm, other: Vm) => Progress]> = [
      ['names another VM’s volume', (vm, other) => wipeOf(other, 512 * MiB, { total: GiB })],
      [
        'names this volume with another capacity',
        (vm) => wipeOf(vm, 512 * MiB, { total: 2 * GiB }),
      ],
      ['is not a wipe’s step', (vm) => wipeOf(vm, 512 * MiB, { step: 'provision' })],
      ['names no volume', (vm) => ({ step: wipeOf(vm, 0).step, done: 512 * MiB, total: GiB })],
      ['has an offset past the end', (vm) => wipeOf(vm, GiB + 1)],
      ['has a fractional offset', (vm) => wipeOf(vm, 0.5)],
    ];
    // libvirt's own wipe resumes only from a partial offset: one unmatched case covers it.
    const cases = [
      ...unmatched.map(([why, of]) => ['stream', why, of] as const),
      ['libvirt', unmatched[0]![0], unmatched[0]![1]] as const,
    ];
    it.each(cases)('wipes every byte (%s) when the progress %s', async (method, _, of) => {
      const { vm, kept } = await filledVm();
      const { vm: other, kept: theirs } = await filledVm();
      await drivers.get(method)!.deprovision(vm, { resumeFrom: of(vm, other) });
      expect(await nonZeroRanges(kept)).toEqual([]);
      expect((await stat(kept)).size).toBeGreaterThanOrEqual(GiB);
      // The other VM's volume, named by the progress but not by the request, is untouched.
      expect((await nonZeroRanges(theirs)).length).toBeGreaterThan(0);
      expect(await poolVolumes(host.uri, pool)).toContain(other.volumes[0]!.name);
      await drivers.get('libvirt')!.deprovision(other);
    });
  },
);
