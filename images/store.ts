import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImageFormat, ImportedImage } from '../registry/images.ts';
import {
  admitUrl,
  ImageSourceError,
  resolveImageFile,
  type ImageSource,
  type ImageSourcePolicy,
} from './sources.ts';

const run = promisify(execFile);

/**
 * An image vagoth will not keep: its digest is not the one asked for, its format is not one it
 * takes, it names a file outside itself. Importing it again would find the same: permanent.
 */
export class ImageRejected extends Error {
  override name = 'ImageRejected';
}

export interface ImportOptions {
  source: ImageSource;
  policy: ImageSourcePolicy;
  /** What the caller said the image is: the import fails unless it is. */
  asked: { format: ImageFormat | null; sha256: string | null };
  /** Bytes past this refuse the image (VAGOTH_IMAGE_MAX_GIB). */
  maxBytes: number;
  /**
   * Bytes read so far, and how many the source said it holds (null where it did not): once
   * the source is open, then every MiB, then at the end.
   */
  onProgress?: (done: number, total: number | null) => void;
  signal?: AbortSignal;
}

/** Redirects an import follows, each to a URL the policy admits. */
const MAX_REDIRECTS = 5;
/** qemu-img reads only an image's header and tables; a minute is plenty for a sane one. */
const INSPECT_TIMEOUT_MS = 60_000;
const FORMATS: readonly ImageFormat[] = ['raw', 'qcow2'];
/** Bytes gathered before one write: a write a chunk cost a system call and a thread hop each. */
const WRITE_BATCH = 4 * 1024 * 1024;

/**
 * The workers' image store: a directory holding each imported image as `<id>.<format>` (and
 * `<id>.part` while it arrives). Workers on several machines share one (NFS, say), as a VM's
 * image is copied from it to whichever host the VM lands on.
 */
export class ImageStore {
  constructor(readonly dir: string) {}

  fileOf(id: string, format: ImageFormat): string {
    return path.join(this.dir, `${checkedId(id)}.${format}`);
  }

  /**
   * Streams the image from its source into the store (never whole in memory), hashing it as it
   * goes, then reads its format and virtual size with `qemu-img info`. Refuses (ImageRejected)
   * a digest other than the one asked for, a format other than qcow2 or raw, a qcow2 image
   * that names another file (a backing or data file: it would read the worker's files), and a
   * source larger than `maxBytes`. Nothing is left in the store but a kept image.
   */
  async import(id: string, options: ImportOptions): Promise<ImportedImage> {
    await mkdir(this.dir, { recursive: true });
    const part = path.join(this.dir, `${checkedId(id)}.part`);
    try {
      const { sha256, sizeBytes } = await this.#receive(part, options);
      const { sha256: asked } = options.asked;
      if (asked !== null && asked !== sha256) {
        throw new ImageRejected(`its SHA-256 is ${sha256}, not the ${asked} asked for`);
      }
      const { format, virtualSize } = await inspect(part, options.asked.format);
      await rename(part, this.fileOf(id, format));
      return { format, sha256, sizeBytes, virtualSize };
    } finally {
      await rm(part, { force: true });
    }
  }

  /** Removes whatever the store holds of an image. */
  async remove(id: string): Promise<void> {
    const files = [...FORMATS, 'part'].map((ext) => path.join(this.dir, `${checkedId(id)}.${ext}`));
    await Promise.all(files.map((f) => rm(f, { force: true })));
  }

  async #receive(
    part: string,
    options: ImportOptions,
  ): Promise<{ sha256: string; sizeBytes: number }> {
    const out = await open(part, 'w', 0o644);
    const hash = createHash('sha256');
    let done = 0;
    let total: number | null = null;
    let reported = 0;
    let writing: Promise<unknown> = Promise.resolve();
    try {
      const source = await openSource(options);
      total = source.total;
      options.onProgress?.(0, total);
      // Chunks arrive small (tens of KiB from a socket): written a few MiB at a time, each
      // batch while the next arrives.
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        await writing;
        if (pendingBytes === 0) return;
        writing = out.writev(pending);
        writing.catch(() => undefined); // awaited by the next flush
        pending = [];
        pendingBytes = 0;
      };
      for await (const chunk of source.chunks as AsyncIterable<Uint8Array>) {
        options.signal?.throwIfAborted();
        done += chunk.length;
        if (done > options.maxBytes) {
          throw new ImageRejected(`larger than ${options.maxBytes} bytes (VAGOTH_IMAGE_MAX_GIB)`);
        }
        hash.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH) await flush();
        if (done - reported >= 1024 * 1024) {
          options.onProgress?.(done, total);
          reported = done;
        }
      }
      await flush();
      await writing;
      await out.sync();
    } finally {
      await writing.catch(() => undefined); // never closed under a write
      await out.close();
    }
    if (total !== null && done !== total) {
      throw new Error(`the source ended after ${done} of the ${total} bytes it announced`);
    }
    options.onProgress?.(done, total);
    return { sha256: hash.digest('hex'), sizeBytes: done };
  }
}

/** Ids name files: only a UUID's characters ever reach a path. */
function checkedId(id: string): string {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`not an image id: ${JSON.stringify(id)}`);
  return id;
}

async function openSource(
  options: ImportOptions,
): Promise<{ chunks: AsyncIterable<Uint8Array>; total: number | null }> {
  const { source, policy, signal } = options;
  if (source.kind === 'file') {
    const file = await resolveImageFile(source.path, policy);
    const handle = await open(file, 'r').catch(() => {
      throw new ImageSourceError('the file cannot be read');
    });
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      throw new ImageSourceError('not a regular file');
    }
    const stream = createReadStream('', { fd: handle, highWaterMark: 1024 * 1024 });
    if (signal) signal.addEventListener('abort', () => stream.destroy(), { once: true });
    return { chunks: stream, total: stats.size };
  }
  let url = source.url;
  for (let hop = 0; ; hop++) {
    const response = await get(url, signal);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location !== undefined) {
      response.destroy();
      if (hop === MAX_REDIRECTS) throw new ImageSourceError(`more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
      admitUrl(url, policy);
      continue;
    }
    if (status !== 200) {
      response.destroy();
      const message = `the server answered HTTP ${status}`;
      // A server's trouble may pass; a refusal of the request will not.
      if (status >= 500 || status === 429) throw new Error(message);
      throw new ImageSourceError(message);
    }
    const length = Number(response.headers['content-length'] ?? NaN);
    return { chunks: response, total: Number.isSafeInteger(length) && length >= 0 ? length : null };
  }
}

/** A server silent this long (no header, no byte) is given up on. */
const IDLE_MS = 60_000;

/**
 * One GET, no redirect followed and nothing decoded (no Accept-Encoding is sent: the bytes
 * hashed are the bytes served). Node's own client: its streams cost half the CPU of fetch's.
 */
function get(url: URL, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(url, { ...(signal ? { signal } : {}) }, resolve);
    request.setTimeout(IDLE_MS, () =>
      request.destroy(new Error('the server sent nothing for a minute')),
    );
    request.once('error', reject);
  });
}

interface QemuImgInfo {
  format?: unknown;
  'virtual-size'?: unknown;
  'backing-filename'?: unknown;
  'full-backing-filename'?: unknown;
  'format-specific'?: { type?: unknown; data?: { 'data-file'?: unknown } };
}

/**
 * The image's format and virtual size, as `qemu-img info` reads them: with `-f` where the
 * caller named the format (a raw image is then never probed), else probed. What qemu-img
 * printed goes nowhere near the caller.
 */
async function inspect(
  file: string,
  asked: ImageFormat | null,
): Promise<{ format: ImageFormat; virtualSize: number }> {
  const args = ['info', '--output=json', ...(asked ? ['-f', asked] : []), file];
  let info: QemuImgInfo;
  try {
    const { stdout } = await run('qemu-img', args, {
      timeout: INSPECT_TIMEOUT_MS,
      maxBuffer: 1024 * 1024,
    });
    info = JSON.parse(stdout) as QemuImgInfo;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') {
      throw new Error('qemu-img is not installed on this worker (bash scripts/setup.sh)', {
        cause: err,
      });
    }
    // What qemu-img printed stays in the cause, for the worker's log only.
    throw new ImageRejected(
      asked ? `qemu-img cannot read it as a ${asked} image` : 'qemu-img cannot read it as an image',
      { cause: err },
    );
  }
  const format = FORMATS.find((f) => f === info.format);
  if (!format) {
    const named = typeof info.format === 'string' && /^[a-z0-9_-]{1,20}$/.test(info.format);
    throw new ImageRejected(
      `its format is ${named ? String(info.format) : 'not known'}: only qcow2 and raw are taken`,
    );
  }
  if (info['backing-filename'] !== undefined || info['full-backing-filename'] !== undefined) {
    throw new ImageRejected('it names a backing file: only a self-contained image is taken');
  }
  if (info['format-specific']?.data?.['data-file'] !== undefined) {
    throw new ImageRejected('it names an external data file: only a self-contained image is taken');
  }
  const size = info['virtual-size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw new ImageRejected('qemu-img found no virtual size in it');
  }
  return { format, virtualSize: size };
}
