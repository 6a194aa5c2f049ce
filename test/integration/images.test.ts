import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageImportWorkflowId } from '../../common/vocabulary.ts';
import { createImage } from '../../registry/images.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const skip = findExecutable('qemu-img') ? null : 'qemu-img not installed';

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Images as a user imports them: from a directory the operator allows, or from a URL under a
 * prefix the operator allows (a server on 127.0.0.1 here), each checked by digest and read by
 * qemu-img, and refused, with the reason, when it is not an image vagoth takes.
 */
describe.skipIf(skip)(skip ? `images (skipped: ${skip})` : 'images', () => {
  let h: Harness;
  let root: string;
  let allowed: string;
  let store: string;
  let server: Server;
  let base: string;
  /** Held open by /images/slow until released. */
  let releaseSlow: () => void = () => {};

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vagoth-images-'));
    allowed = path.join(root, 'allowed');
    store = path.join(root, 'store');
    await mkdir(allowed);
    await writeFile(path.join(root, 'outside.raw'), randomBytes(MiB));
    await writeFile(path.join(allowed, 'disk.raw'), randomBytes(2 * MiB));
    await run('qemu-img', [
      'convert',
      '-f',
      'raw',
      '-O',
      'qcow2',
      path.join(allowed, 'disk.raw'),
      path.join(allowed, 'disk.qcow2'),
    ]);
    await run('qemu-img', [
      'create',
      ...['-f', 'qcow2', '-b', path.join(allowed, 'disk.raw'), '-F', 'raw'],
      path.join(allowed, 'backed.qcow2'),
    ]);
    await run('qemu-img', ['create', '-f', 'vmdk', path.join(allowed, 'disk.vmdk'), '8M']);
    await run('truncate', ['--size', String(40 * MiB), path.join(allowed, 'big.raw')]);
    await symlink(path.join(root, 'outside.raw'), path.join(allowed, 'link.raw'));
    await run('mkfifo', [path.join(allowed, 'fifo.raw')]);
    // Raw bytes that look like a VMDK descriptor naming a file of the worker's.
    await writeFile(
      path.join(allowed, 'descriptor.raw'),
      `# Disk DescriptorFile\nversion=1\nRW 8 FLAT "${path.join(root, 'outside.raw')}" 0\n`,
    );

    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x').pathname;
      if (url === '/images/to-disk') {
        res.writeHead(302, { location: '/images/disk.raw' }).end();
      } else if (url === '/images/to-private') {
        res.writeHead(302, { location: '/private/disk.raw' }).end();
      } else if (url === '/images/slow') {
        res.writeHead(200, { 'content-length': String(8 * MiB) });
        res.write(Buffer.alloc(4 * MiB, 1));
        releaseSlow = () => res.end(Buffer.alloc(4 * MiB, 2));
      } else if (url === '/images/gzipped') {
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': '4' }).end('abcd');
      } else if (url.startsWith('/images/') || url.startsWith('/private/')) {
        const file = path.join(allowed, path.basename(url));
        readFile(file).then(
          (data) => res.writeHead(200, { 'content-length': String(data.length) }).end(data),
          () => res.writeHead(404).end(),
        );
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    h = await startHarness({
      images: {
        store,
        sources: { dirs: [allowed], urls: [`${base}/images/`] },
        maxBytes: 32 * MiB,
      },
    });
  });
  afterAll(async () => {
    releaseSlow();
    await h?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await rm(root, { recursive: true, force: true });
  });

  /** Creates an image and waits for its import to end; answers what images.get says then. */
  async function imported(input: Parameters<Harness['api']['images']['create']>[0]) {
    const image = await h.api.images.create(input);
    expect(image).toMatchObject({ name: input.name, status: 'importing' });
    await h.temporal.workflow
      .getHandle(image.operation!.id, image.operation!.runId)
      .result()
      .catch(() => {});
    return h.api.images.get({ name: input.name });
  }

  const storeFiles = async () => (await readdir(store).catch(() => [])).sort();

  it('imports a qcow2 image from an allowed directory: its digest, format and size recorded, its bytes kept whole', async () => {
    const source = path.join(allowed, 'disk.qcow2');
    const image = await imported({ name: 'deb', source });
    expect(image).toMatchObject({
      name: 'deb',
      source,
      status: 'ready',
      format: 'qcow2',
      sha256: await sha256(source),
      sizeBytes: (await readFile(source)).length,
      virtualSize: 2 * MiB,
      error: null,
      readyAt: expect.any(String),
      operation: { id: `image:${image.id}:import`, kind: 'import', url: expect.any(String) },
    });
    expect(await sha256(path.join(store, `${image.id}.qcow2`))).toBe(image.sha256);
    const op = await h.api.operations.get(image.operation!);
    expect(op).toMatchObject({ status: 'completed', error: null });
    expect((await h.api.images.list()).map((i) => i.name)).toContain('deb');
    // A reader sees images, and may not import one.
    const reader = await h.callerWith('reader');
    expect(await reader.api.images.get({ name: 'deb' })).toEqual(image);
    const refused = await refusal(reader.api.images.create({ name: 'r', source }));
    expect(refused.code).toBe('FORBIDDEN');
  });

  it('imports a raw image over HTTP, through a redirect the prefixes admit, checked against the digest asked for', async () => {
    const digest = await sha256(path.join(allowed, 'disk.raw'));
    const image = await imported({
      name: 'web-raw',
      source: `${base}/images/to-disk`,
      sha256: digest,
    });
    expect(image).toMatchObject({
      status: 'ready',
      format: 'raw',
      sha256: digest,
      virtualSize: 2 * MiB,
    });
    expect(image.asked).toEqual({ format: null, sha256: digest });
  });

  it.each([
    [
      'a digest other than the one asked for',
      { source: 'disk.raw', sha256: 'ab'.repeat(32) },
      /its SHA-256 is [0-9a-f]{64}, not the (ab){32} asked for/,
    ],
    ['a qcow2 image with a backing file', { source: 'backed.qcow2' }, /names a backing file/],
    [
      'a format vagoth does not take',
      { source: 'disk.vmdk' },
      /its format is vmdk: only qcow2 and raw are taken/,
    ],
    [
      'a raw image said to be qcow2',
      { source: 'disk.raw', format: 'qcow2' as const },
      /it is a raw image, not the qcow2 asked for/,
    ],
    [
      'a link out of the allowed directory',
      { source: 'link.raw' },
      /outside VAGOTH_IMAGE_DIRS once links are followed/,
    ],
    [
      'an image past the size limit',
      { source: 'big.raw' },
      /it holds 41943040 bytes, more than 33554432/,
    ],
    [
      'a redirect out of the allowed prefixes',
      { url: '/images/to-private' },
      /must start with a prefix of VAGOTH_IMAGE_URLS/,
    ],
    ['a URL the server does not have', { url: '/images/none.raw' }, /the server answered HTTP 404/],
    ['a FIFO, never waited on', { source: 'fifo.raw' }, /not a regular file/],
    [
      'raw bytes that look like a VMDK descriptor',
      { source: 'descriptor.raw' },
      /its format is vmdk/,
    ],
    [
      'a qcow2 image said to be raw',
      { source: 'disk.qcow2', format: 'raw' as const },
      /it is a qcow2 image, not the raw asked for/,
    ],
    ['an encoded download', { url: '/images/gzipped' }, /encoded/],
  ])(
    'refuses %s: the import fails with the reason, and leaves nothing in the store',
    async (_, given, reason) => {
      const before = await storeFiles();
      const name = `bad-${randomBytes(4).toString('hex')}`;
      const { source, url, ...rest } = given as { source?: string; url?: string };
      const image = await imported({
        name,
        source: url ? `${base}${url}` : path.join(allowed, source!),
        ...rest,
      });
      expect(image.status).toBe('failed');
      expect(image.error).toMatch(reason);
      expect(image.error).not.toMatch(/qemu-img:|\/tmp\//); // what a program printed stays out
      const op = await h.api.operations.get(image.operation!);
      expect(op).toMatchObject({ status: 'failed', error: { type: 'ImageRejected' } });
      expect(op.error!.message).toMatch(reason);
      expect(await storeFiles()).toEqual(before);
      // A failed image keeps its name until it is deleted.
      expect(
        (await refusal(h.api.images.create({ name, source: path.join(allowed, 'disk.raw') }))).code,
      ).toBe('CONFLICT');
      expect(await h.api.images.delete({ name })).toEqual({ name, deleted: true });
    },
  );

  it.each([
    [
      'a file outside the allowed directories',
      () => path.join(root, 'outside.raw'),
      /VAGOTH_IMAGE_DIRS/,
    ],
    ['a path that climbs out', () => `${allowed}/../outside.raw`, /\.\./],
    ['a relative path', () => 'disk.raw', /absolute path or an http\(s\) URL/],
    ['a file: URL', () => `file://${allowed}/disk.raw`, /absolute path or an http\(s\) URL/],
    ['a URL under no allowed prefix', () => `${base}/private/disk.raw`, /VAGOTH_IMAGE_URLS/],
    ['a URL beside the allowed prefix', () => `${base}/imagesX/disk.raw`, /VAGOTH_IMAGE_URLS/],
    ['a URL with an encoded slash', () => `${base}/images/..%2fprivate/disk.raw`, /encoded slash/],
    [
      'a URL with credentials',
      () => base.replace('http://', 'http://u:p@') + '/images/disk.raw',
      /credentials/,
    ],
    [
      'a URL that climbs out of the prefix',
      () => `${base}/images/%2e%2e/private/disk.raw`,
      /VAGOTH_IMAGE_URLS/,
    ],
  ])(
    'refuses %s as BAD_REQUEST naming source, at once, recording nothing',
    async (_, source, reason) => {
      const started = performance.now();
      const err = await refusal(h.api.images.create({ name: 'never', source: source() }));
      expect(performance.now() - started).toBeLessThan(1000);
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toMatch(/^source: /);
      expect(err.message).toMatch(reason);
      expect((await refusal(h.api.images.get({ name: 'never' }))).code).toBe('NOT_FOUND');
    },
  );

  it('refuses bad fields as BAD_REQUEST naming them', async () => {
    const source = path.join(allowed, 'disk.raw');
    for (const [input, field] of [
      [{ name: 'x', source, sha256: 'AB'.repeat(32) }, 'sha256'],
      [{ name: 'x', source, format: 'vmdk' }, 'format'],
      [{ name: '-x', source }, 'name'],
      [{ name: 'x', source: 'x'.repeat(3000) }, 'source'],
    ] as const) {
      const err = await refusal(h.api.images.create(input as never));
      expect(err.code).toBe('BAD_REQUEST');
      // The fields as the API's error formatter names them (api/trpc.ts).
      const issues = (err.cause as { issues?: { path: PropertyKey[] }[] } | undefined)?.issues;
      expect(issues?.map((i) => i.path.join('.'))).toEqual([field]);
    }
  });

  it('shows bytes read while importing, refuses a delete until the import ends, then deletes the image and frees its name', async () => {
    const image = await h.api.images.create({ name: 'slow', source: `${base}/images/slow` });
    let seen: { done: number; total: number | null } | undefined;
    for (let i = 0; !seen; i++) {
      expect(i).toBeLessThan(200);
      seen = (await h.api.images.get({ name: 'slow' })).progress;
      await new Promise((r) => setTimeout(r, 50));
    }
    // As heartbeated: the first report (the source open) at once, later ones as the SDK sends them.
    expect(seen.total).toBe(8 * MiB);
    expect(seen.done).toBeGreaterThanOrEqual(0);
    expect(seen.done).toBeLessThanOrEqual(4 * MiB);
    expect((await refusal(h.api.images.delete({ name: 'slow' }))).code).toBe('PRECONDITION_FAILED');
    releaseSlow();
    await h.temporal.workflow.getHandle(image.operation!.id).result();
    const ready = await h.api.images.get({ name: 'slow' });
    expect(ready).toMatchObject({ status: 'ready', format: 'raw', sizeBytes: 8 * MiB });
    expect(ready.progress).toBeUndefined();
    expect(await storeFiles()).toContain(`${image.id}.raw`);

    expect(await h.api.images.delete({ name: 'slow' })).toEqual({ name: 'slow', deleted: true });
    expect((await refusal(h.api.images.get({ name: 'slow' }))).code).toBe('NOT_FOUND');
    expect(await storeFiles()).not.toContain(`${image.id}.raw`);
    expect((await refusal(h.api.images.delete({ name: 'slow' }))).code).toBe('NOT_FOUND');
    const again = await imported({ name: 'slow', source: path.join(allowed, 'disk.raw') });
    expect(again).toMatchObject({ status: 'ready' });
    expect(again.id).not.toBe(image.id);
  });

  it('deletes an image whose import never started (its start lost with the API process)', async () => {
    const source = path.join(allowed, 'disk.raw');
    await createImage(h.sql, { name: 'orphan', source }, imageImportWorkflowId);
    expect(await h.api.images.get({ name: 'orphan' })).toMatchObject({ status: 'importing' });
    // Its start may still be under way for a while: not yet.
    expect((await refusal(h.api.images.delete({ name: 'orphan' }))).code).toBe(
      'PRECONDITION_FAILED',
    );
    await h.sql`UPDATE images SET created_at = now() - interval '2 minutes' WHERE name = 'orphan'`;
    expect(await h.api.images.delete({ name: 'orphan' })).toEqual({
      name: 'orphan',
      deleted: true,
    });
    expect((await refusal(h.api.images.get({ name: 'orphan' }))).code).toBe('NOT_FOUND');
  });

  it('settles a cancelled import: failed, with its reason, and nothing in the store', async () => {
    const before = await storeFiles();
    const image = await h.api.images.create({ name: 'cancelled', source: `${base}/images/slow` });
    const handle = h.temporal.workflow.getHandle(image.operation!.id);
    for (let i = 0; (await h.api.images.get({ name: 'cancelled' })).progress === undefined; i++) {
      expect(i).toBeLessThan(200);
      await new Promise((r) => setTimeout(r, 50));
    }
    await handle.cancel();
    await handle.result().catch(() => {});
    releaseSlow();
    const after = await h.api.images.get({ name: 'cancelled' });
    expect(after.status).toBe('failed');
    expect(after.error).toEqual(expect.any(String));
    expect(await storeFiles()).toEqual(before);
    await h.api.images.delete({ name: 'cancelled' });
  });

  it('never shows back the query of a source URL (it may carry a signature)', async () => {
    const image = await imported({ name: 'signed', source: `${base}/images/disk.raw?sig=secret` });
    expect(image.status).toBe('ready');
    expect(image.source).toBe(`${base}/images/disk.raw?(hidden)`);
    expect(JSON.stringify(await h.api.images.list())).not.toContain('secret');
  });
});
