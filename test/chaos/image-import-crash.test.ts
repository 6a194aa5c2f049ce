import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectClient } from '../../workers/compose.ts';
import { createTestDatabase } from '../support/harness.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { tokenCaller, type ApiCaller } from '../support/token-caller.ts';
import { WorkerProcess } from '../support/worker-process.ts';

const MiB = 1024 ** 2;
const skip = findExecutable('qemu-img') ? null : 'qemu-img not installed';

/**
 * A worker SIGKILLed in the middle of an image's import, as a machine failure would: the
 * import's next attempt, on the next worker, starts the download over, and the image ends
 * ready with the source's bytes; nothing the killed attempt left stays in the store.
 */
describe.skipIf(skip)(
  skip
    ? `an image import across a worker crash (skipped: ${skip})`
    : 'an image import across a worker crash',
  () => {
    const cleanups: Array<() => Promise<unknown>> = [];
    let dir: string;
    let store: string;
    let worker: WorkerProcess;
    let api: ApiCaller;
    let base: string;
    const image = randomBytes(8 * MiB);
    let requests = 0;
    const held: ServerResponse[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'vagoth-import-crash-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      store = path.join(dir, 'store');
      await mkdir(store);
      // The first request gets half the image, then nothing: the worker dies under it. Later
      // ones get all of it.
      const server = createServer((req, res) => {
        requests++;
        res.writeHead(200, { 'content-length': String(image.length) });
        if (requests === 1) {
          res.write(image.subarray(0, 4 * MiB));
          held.push(res);
        } else res.end(image);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(async () => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      });
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/images/`;

      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      const address = inject('temporalAddress');
      const temporal = await connectClient(address, 'default');
      cleanups.push(() => temporal.connection.close());
      const bundlePath = path.join(dir, 'workflows.js');
      await writeFile(bundlePath, inject('workflowBundle'));
      const taskQueue = `import-crash-${randomUUID()}`;
      worker = new WorkerProcess({
        temporalAddress: address,
        databaseUrl: db.url,
        taskQueue,
        bundlePath,
        env: { VAGOTH_IMAGE_URLS: base, VAGOTH_IMAGE_STORE: store },
      });
      cleanups.push(() => worker.stop());
      await worker.start();
      ({ api } = await tokenCaller({
        sql: db.sql,
        temporal,
        taskQueue,
        namespace: 'default',
        temporalUiUrl: 'http://ui',
        placementPolicy: 'spread',
        imageSources: { dirs: [], urls: [base] },
      }));
    });
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error(err));
    });

    it('starts the download over on the next worker, ends ready with the source’s bytes, and leaves no part file', async () => {
      const created = await api.images.create({ name: 'crash', source: `${base}disk.raw` });
      // SIGKILL once half the image is in the store.
      for (let i = 0; (await api.images.get({ name: 'crash' })).progress === undefined; i++) {
        expect(i).toBeLessThan(300);
        await new Promise((r) => setTimeout(r, 100));
      }
      await worker.kill('SIGKILL');
      const left = (await readdir(store)).filter((n) => n.startsWith(created.id));
      expect(left).toEqual([expect.stringMatching(/\.part$/)]);
      expect((await api.images.get({ name: 'crash' })).status).toBe('importing');

      await worker.start();
      // The server gives up on the lost attempt after the heartbeat timeout (a minute).
      for (let i = 0; (await api.images.get({ name: 'crash' })).status === 'importing'; i++) {
        expect(i).toBeLessThan(1800);
        await new Promise((r) => setTimeout(r, 100));
      }
      const done = await api.images.get({ name: 'crash' });
      expect(done).toMatchObject({
        status: 'ready',
        format: 'raw',
        sizeBytes: image.length,
        sha256: createHash('sha256').update(image).digest('hex'),
      });
      expect(requests).toBe(2);
      expect(await readdir(store)).toEqual([`${created.id}.raw`]);
    });
  },
);
