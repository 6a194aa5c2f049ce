import { randomUUID } from 'node:crypto';
import { link, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultPayloadConverter, type Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Progress } from '../../drivers/driver.ts';
import { copyStep } from '../../drivers/libvirt/volume-copy.ts';
import { vmWorkflowId } from '../../common/vocabulary.ts';
import { connectClient } from '../../workers/compose.ts';
import {
  nonZeroRanges,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { fileDigest, writePattern } from '../support/disk-pattern.ts';
import { createTestDatabase } from '../support/harness.ts';
import { TEST_HOST_URIS } from '../support/host-uris.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { tokenCaller, type ApiCaller } from '../support/token-caller.ts';
import { WorkerProcess } from '../support/worker-process.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/**
 * The worker's cap on a cold move's copy (VAGOTH_LIBVIRT_COPY_MIB_S): 1 GiB takes about 85 s,
 * longer than the 48 s in which the SDK passes the server a heartbeat under `long`'s 1-minute
 * heartbeat timeout, so the server holds a copy offset past 0 well before the copy ends.
 */
const COPY_MIB_S = 12;

const missing = ['libvirtd', 'virsh', 'qemu-system-x86_64'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function decode(payloads: temporal.api.common.v1.IPayloads | null | undefined): unknown {
  const first = payloads?.payloads?.[0];
  return first ? defaultPayloadConverter.fromPayload(first) : undefined;
}

describe.skipIf(skip)(
  skip
    ? `a cold move's copy resumed after a worker crash (skipped: ${skip})`
    : "a cold move's copy resumed after a worker crash",
  () => {
    const pool = `vagoth-dmr-${randomUUID().slice(0, 8)}`;
    const daemons: Record<string, DirPoolDaemon> = {};
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let client: Client;
    let worker: WorkerProcess;
    let api: ApiCaller;
    const cleanups: Array<() => Promise<unknown>> = [];

    beforeAll(async () => {
      const [a, b] = await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)]);
      daemons['dmr-a'] = a;
      daemons['dmr-b'] = b;
      cleanups.push(
        () => a.stop(),
        () => b.stop(),
      );
      db = await createTestDatabase();
      cleanups.push(() => db.drop());
      const address = inject('temporalAddress');
      client = await connectClient(address, 'default');
      cleanups.push(() => client.connection.close());
      const bundlePath = path.join(a.daemon.dir, 'workflows.js');
      await writeFile(bundlePath, inject('workflowBundle'));
      const taskQueue = `disk-move-resume-${randomUUID()}`;
      worker = new WorkerProcess({
        temporalAddress: address,
        databaseUrl: db.url,
        taskQueue,
        bundlePath,
        env: {
          VAGOTH_LIBVIRT_POOLS: pool,
          VAGOTH_LIBVIRT_DOMAIN_TYPE: 'qemu',
          VAGOTH_LIBVIRT_COPY_MIB_S: String(COPY_MIB_S),
        },
      });
      cleanups.push(() => worker.stop());
      await worker.start();
      ({ api } = await tokenCaller({
        sql: db.sql,
        temporal: client,
        taskQueue,
        namespace: 'default',
        temporalUiUrl: 'http://ui.test',
        placementPolicy: 'spread',
        hostUris: TEST_HOST_URIS,
      }));
      for (const [name, d] of Object.entries(daemons)) {
        await api.hosts.register({ name, driver: 'libvirt', uri: d.uri, diskGiB: 100 });
      }
    });

    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error(err));
    });

    /** The VM workflow's pending activity and its last heartbeat, once `until` holds. */
    async function pending(
      name: string,
      what: string,
      until: (a: temporal.api.workflow.v1.IPendingActivityInfo, p: Progress | undefined) => boolean,
    ) {
      const handle = client.workflow.getHandle(vmWorkflowId(name));
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

    async function settled(id: string, runId: string, updateId: string) {
      for (;;) {
        const op = await api.operations.get({ id, runId, updateId });
        if (op.status !== 'running' && op.status !== 'queued') return op;
        await sleep(500);
      }
    }

    it('goes on from the offset the killed worker heartbeated, and every byte arrives', async () => {
      const name = 'dmr-1';
      await api.vms.create({
        name,
        vcpus: 1,
        memoryMiB: 64,
        diskGiB: 1,
        placement: { host: 'dmr-a' },
      });
      for (;;) {
        const vm = await api.vms.get({ name });
        if (vm.state === 'running') break;
        expect(vm.state).not.toBe('failed');
        await sleep(250);
      }
      const stopped = (await api.vms.stop({ name })).operation;
      expect(await settled(stopped.id, stopped.runId, stopped.updateId!)).toMatchObject({
        status: 'completed',
      });
      const volume = (await api.vms.get({ name })).keys
        .find((k) => k.startsWith('vol:'))!
        .split('/')[1]!;
      const source = path.join(daemons['dmr-a']!.poolDir, volume);
      await writePattern(source);
      const digest = await fileDigest(source);
      const kept = path.join(daemons['dmr-a']!.linkDir, volume);
      await link(source, kept);
      const root = { pool, name: volume };

      const { operation } = await api.vms.migrate({ name, host: 'dmr-b' });
      // SIGKILL once the server holds a copy offset past 0.
      const first = await pending(
        name,
        'no copy offset reached the server',
        (_, p) => p?.step === copyStep(root) && p.done > 0,
      );
      await worker.kill('SIGKILL');
      const offset = first.progress!.done;
      expect(first.activity.attempt).toBe(1);
      expect(first.progress).toEqual({
        step: copyStep(root),
        done: offset,
        total: GiB,
        volume: root,
      });
      expect(offset).toBeLessThan(GiB);

      await worker.start();
      // The retry's first heartbeat (passed at once) is the copy going on from that offset.
      const second = await pending(
        name,
        'no second attempt reported',
        (a, p) => a.attempt === 2 && p?.step === copyStep(root) && p.done >= offset,
      );
      expect(second.progress!.done).toBeGreaterThanOrEqual(offset);

      const op = await settled(operation.id, operation.runId, operation.updateId!);
      expect(op).toMatchObject({ status: 'completed', error: null });
      expect(await api.vms.get({ name })).toMatchObject({ host: 'dmr-b', state: 'stopped' });
      expect(await fileDigest(path.join(daemons['dmr-b']!.poolDir, volume))).toBe(digest);
      await expect(stat(source)).rejects.toThrow();
      expect(await nonZeroRanges(kept)).toEqual([]);
      expect(worker.starts).toBe(2);
      console.log(
        `disk-move-resume: ${GiB / MiB} MiB volume at ${COPY_MIB_S} MiB/s; killed at attempt 1, resumed from ${offset / MiB} MiB`,
      );
    });
  },
);
