import { randomUUID } from 'node:crypto';
import { link, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApplicationFailure,
  defaultPayloadConverter,
  WorkflowFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Progress, VolumeRef } from '../../drivers/driver.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { placeVm } from '../../registry/allocate.ts';
import { PROBE } from '../../drivers/libvirt/wipe.ts';
import { claimVm } from '../../registry/claim-vm.ts';
import { insertHost } from '../../registry/hosts.ts';
import type { Vm } from '../../registry/types.ts';
import { wipesOf } from '../../registry/volume-wipes.ts';
import { claimVolumes } from '../../registry/vm-volumes.ts';
import { connectClient, workflowInterceptorModules } from '../../workers/compose.ts';
import { poolVolumes, readMarks, writeMarks, type Mark } from '../realvm/host.ts';
import {
  nonZeroRanges,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { quietLogger } from '../support/global-setup.ts';
import { createTestDatabase } from '../support/harness.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { WorkerProcess } from '../support/worker-process.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/**
 * The worker's cap on streamed zeros (VAGOTH_LIBVIRT_WIPE_MIB_S): 1 GiB takes about 85 s, longer
 * than the 48 s in which the SDK passes the server a heartbeat under `wipe`'s 1-minute heartbeat
 * timeout, so the server holds an offset past 0 well before the wipe ends.
 */
const WIPE_MIB_S = 12;
const HOST = 'disk-1';
const WORKFLOWS = fileURLToPath(new URL('./wipe-only-workflows.ts', import.meta.url));

const missing = ['libvirtd', 'virsh'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function decode(payloads: temporal.api.common.v1.IPayloads | null | undefined): unknown {
  const first = payloads?.payloads?.[0];
  return first ? defaultPayloadConverter.fromPayload(first) : undefined;
}

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

/** Polls the workflow's pending activity until `until` holds; the deadline only bounds a hang. */
async function pendingActivity(
  handle: WorkflowHandle,
  what: string,
  until: (a: PendingActivity, progress: Progress | undefined) => boolean,
): Promise<{ activity: PendingActivity; progress: Progress | undefined }> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const { raw } = await handle.describe();
    const activity = raw.pendingActivities?.[0];
    const progress = decode(activity?.heartbeatDetails) as Progress | undefined;
    if (activity && until(activity, progress)) return { activity, progress };
    if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(activity)}`);
    await sleep(250);
  }
}

describe.skipIf(skip)(
  skip
    ? `a wipe resumed after a worker crash (skipped: ${skip})`
    : 'a wipe resumed after a worker crash',
  () => {
    const pool = `vagoth-wipe-${randomUUID().slice(0, 8)}`;
    let host: DirPoolDaemon;
    let uri: string;
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let client: Client;
    let worker: WorkerProcess;
    let driver: LibvirtDriver;
    let bundlePath: string;
    const cleanups: Array<() => Promise<unknown>> = [];
    const volumePath = (v: VolumeRef) => path.join(host.poolDir, v.name);

    beforeAll(async () => {
      // Real bytes to wipe, no guest needed (none could boot here without KVM).
      host = await startDirPoolDaemon(pool);
      cleanups.push(() => host.stop());
      uri = host.uri;
      driver = new LibvirtDriver({ uri, pools: [pool] });
      cleanups.push(() => driver.close());

      db = await createTestDatabase();
      cleanups.push(() => db.drop());
      const address = inject('temporalAddress');
      client = await connectClient(address, 'default');
      cleanups.push(() => client.connection.close());
      const { code } = await bundleWorkflowCode({
        workflowsPath: WORKFLOWS,
        workflowInterceptorModules,
        logger: quietLogger,
      });
      bundlePath = path.join(host.daemon.dir, 'workflows.js');
      await writeFile(bundlePath, code);
      worker = new WorkerProcess({
        temporalAddress: address,
        databaseUrl: db.url,
        taskQueue: `wipe-resume-${randomUUID()}`,
        bundlePath,
        env: {
          VAGOTH_LIBVIRT_POOLS: pool,
          VAGOTH_LIBVIRT_WIPE: 'stream',
          VAGOTH_LIBVIRT_WIPE_MIB_S: String(WIPE_MIB_S),
        },
      });
      cleanups.push(() => worker.stop());
      await worker.start();
      await insertHost(db.sql, {
        name: HOST,
        driver: 'libvirt',
        uri,
        capacity: { vcpus: 8, memoryMiB: 16_384 },
        diskGiB: 100,
      });
    });

    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error(err));
    });

    /** A VM as create records it up to its volume: claimed, placed, its volume claimed and made. */
    async function provisionedVm(name: string): Promise<Vm & { volumes: VolumeRef[] }> {
      const claimed = await claimVm(
        db.sql,
        { name, vcpus: 1, memoryMiB: 64, diskGiB: 1, nics: [], tags: {}, placement: {} },
        { kind: 'create', workflowId: `test:${name}`, runId: randomUUID() },
      );
      const { host } = await placeVm(db.sql, claimed, 'spread');
      const volumes = driver.volumesFor(claimed);
      await claimVolumes(db.sql, claimed.id, host, volumes);
      await driver.provision({ ...claimed, volumes });
      return { ...claimed, volumes };
    }

    it("a wipe longer than its attempt bound finishes: each attempt goes on from the last one's heartbeat", async () => {
      // A worker of its own, four times faster: 1 GiB in about 21 s, attempts of 6 s.
      const fast = new WorkerProcess({
        temporalAddress: inject('temporalAddress'),
        databaseUrl: db.url,
        taskQueue: `wipe-brief-${randomUUID()}`,
        bundlePath,
        env: {
          VAGOTH_LIBVIRT_POOLS: pool,
          VAGOTH_LIBVIRT_WIPE_MIB_S: String(4 * WIPE_MIB_S),
        },
      });
      cleanups.push(() => fast.stop());
      await fast.start();
      const vm = await provisionedVm('wiped-briefly');
      const [root] = vm.volumes as [VolumeRef];
      const data: Mark[] = [];
      // In every PROBE: a thin volume's wipe writes where it finds data, so here all of it.
      for (let offset = 512; offset < GiB; offset += PROBE) {
        data.push({ offset, text: `VAGOTH-DATA-${offset}` });
      }
      await writeMarks(volumePath(root), data);
      const kept = path.join(host.linkDir, 'wiped-briefly');
      await link(volumePath(root), kept);

      const handle = await client.workflow.start('wipeVolumesBriefly', {
        taskQueue: fast.options.taskQueue,
        workflowId: `wipe-brief-${vm.id}`,
        args: [vm.id],
      });
      await handle.result();
      await fast.stop();

      const { events } = await handle.fetchHistory();
      const started = (events ?? []).flatMap((e) =>
        e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes] : [],
      );
      expect(started).toHaveLength(1);
      expect(started[0]!.attempt).toBeGreaterThanOrEqual(3);
      expect(started[0]!.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(
        temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE,
      );
      // The attempt that finished began where an earlier one had got to, and its check passed.
      const records = await wipesOf(db.sql, { id: vm.id });
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ method: 'stream', check: { zero: true } });
      expect(records[0]!.resumedFrom).toBeGreaterThan(0);
      expect(await nonZeroRanges(kept)).toEqual([]);
      expect(await poolVolumes(uri, pool)).not.toContain(root.name);
      console.log(
        `wipe-brief: ${started[0]!.attempt} attempts of 6 s; the last resumed from ${records[0]!.resumedFrom / MiB} MiB`,
      );
    });

    it('goes on from the offset the killed worker heartbeated, zeroes every byte after it, reads back what was written before it, and touches nothing else', async () => {
      const vm = await provisionedVm('wiped');
      const neighbour = await provisionedVm('kept');
      const [root] = vm.volumes as [VolumeRef];
      // Data all through the volume, so whatever a wipe skips shows.
      const data: Mark[] = [];
      // In every PROBE: a thin volume's wipe writes where it finds data, so here all of it.
      for (let offset = 512; offset < GiB; offset += PROBE) {
        data.push({ offset, text: `VAGOTH-DATA-${vm.id}-${offset}` });
      }
      await writeMarks(volumePath(root), data);
      const theirs: Mark[] = [0, GiB / 2, GiB - 64].map((offset) => ({
        offset,
        text: `VAGOTH-NEIGHBOUR-${offset}`,
      }));
      await writeMarks(volumePath(neighbour.volumes[0]!), theirs);
      const sentinel = path.join(host.poolDir, `${root.name}.sentinel`);
      await writeFile(sentinel, 'in the pool, but no volume vagoth recorded');
      // A second name for the volume's inode: what deletion leaves behind, to read afterwards.
      const kept = path.join(host.linkDir, 'wiped');
      await link(volumePath(root), kept);

      const handle = await client.workflow.start('wipeVolumesOnly', {
        taskQueue: worker.options.taskQueue,
        workflowId: `wipe-resume-${vm.id}`,
        args: [vm.id],
      });
      // SIGKILL once the server holds an offset past 0: the SDK passes the first heartbeat at
      // once and the next ones at most every 0.8 x the heartbeat timeout.
      const first = await pendingActivity(
        handle,
        'no heartbeat past 0 reached the server',
        (_, p) => (p?.done ?? 0) > 0,
      );
      await worker.kill('SIGKILL');
      const heartbeated = first.progress!;
      const offset = heartbeated.done;
      expect(first.activity.attempt).toBe(1);
      expect(heartbeated).toEqual({
        host: HOST,
        step: `wipe ${pool}/${root.name}`,
        done: offset,
        total: GiB,
        volume: root,
      });

      // The heartbeat told the truth (every byte before it is zero) and the kill landed mid-wipe:
      // data is left past it, or this test would prove nothing.
      const atKill = await nonZeroRanges(kept);
      expect(atKill.length).toBeGreaterThan(0);
      expect(atKill[0]!.start).toBeGreaterThanOrEqual(offset);
      // A canary in the part the first attempt had zeroed: an attempt that started over would
      // zero it too; one that goes on from the heartbeated offset never writes there again.
      const canary: Mark = { offset: 4096, text: 'VAGOTH-CANARY-AFTER-THE-KILL' };
      expect(canary.offset + canary.text.length).toBeLessThan(offset);
      await writeMarks(kept, [canary]);

      await worker.start();
      // The server retries once the heartbeat timeout has passed; the second attempt starts
      // with the details the first heartbeated, and reports from there, never from 0.
      const second = await pendingActivity(
        handle,
        'no second attempt started',
        (a) =>
          a.attempt === 2 &&
          a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      );
      expect(second.progress).toMatchObject({ step: heartbeated.step, volume: root });
      expect(second.progress!.done).toBeGreaterThanOrEqual(offset);
      // The read-back after the wipe finds the canary: the operation fails, saying where.
      const outcome: unknown = await handle.result().then(
        () => 'completed',
        (err: unknown) => err,
      );
      expect(outcome).toBeInstanceOf(WorkflowFailedError);
      const cause = (outcome as WorkflowFailedError).cause?.cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause).toMatchObject({
        type: 'WipeUnverified',
        message: expect.stringMatching(/byte 4096 is not zero; the volume is kept$/),
      });

      // History: one activity, completed by its second attempt after a heartbeat timeout, with
      // the timeouts of `wipe` (workflows/proxies.ts) in its scheduled event for a user to see.
      const { events } = await handle.fetchHistory();
      const scheduled = (events ?? []).flatMap((e) =>
        e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : [],
      );
      expect(scheduled).toHaveLength(1);
      expect(scheduled[0]!.activityType?.name).toBe('deprovisionVolumes');
      expect(Number(scheduled[0]!.heartbeatTimeout?.seconds)).toBe(60);
      expect(Number(scheduled[0]!.startToCloseTimeout?.seconds)).toBe(24 * 60 * 60);
      const started = (events ?? []).flatMap((e) =>
        e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes] : [],
      );
      expect(started).toHaveLength(1);
      expect(started[0]!.attempt).toBe(2);
      expect(started[0]!.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(
        temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT,
      );

      // Outcome: every byte of the volume was zeroed but the canary, which the resumed attempt
      // never touched and the check found, so the volume is kept; nothing else in the pool changed.
      expect(await nonZeroRanges(kept)).toEqual([
        { start: canary.offset, end: canary.offset + canary.text.length },
      ]);
      expect((await stat(kept)).size).toBeGreaterThanOrEqual(GiB);
      const left = await poolVolumes(uri, pool);
      expect(left).toContain(root.name);
      expect(left).toContain(neighbour.volumes[0]!.name);
      expect(await readMarks(volumePath(neighbour.volumes[0]!), theirs)).toEqual(
        theirs.map((m) => m.text),
      );
      expect(await readFile(sentinel, 'utf8')).toBe('in the pool, but no volume vagoth recorded');
      expect(worker.starts).toBe(2);
      console.log(
        `wipe-resume: ${GiB / MiB} MiB volume at ${WIPE_MIB_S} MiB/s; killed at attempt 1, resumed from ${offset / MiB} MiB`,
      );
    });
  },
);
