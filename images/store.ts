import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ImageFormat, ImportedImage } from '../registry/images.ts';
import { openSource } from './download.ts';
import { ImageRejected, inspect } from './inspect.ts';
import type { ImageSource, ImageSourcePolicy } from './sources.ts';

export { ImageRejected } from './inspect.ts';

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

/** Bytes gathered before one write: a write a chunk cost a system call and a thread hop each. */
const WRITE_BATCH = 4 * 1024 * 1024;

/**
 * The workers' image store: a directory holding each imported image as `<id>.<format>` (and
 * `<id>.<attempt>.part` while one arrives). Workers on several machines share one (NFS, say),
 * as a VM's image is copied from it to whichever host the VM lands on.
 */
export class ImageStore {
  constructor(readonly dir: string) {}

  fileOf(id: string, format: ImageFormat): string {
    return path.join(this.dir, `${checkedId(id)}.${format}`);
  }

  /**
   * Streams the image from its source into the store (never whole in memory), hashing it as it
   * goes, then reads its format and virtual size (inspect.ts). Refuses (ImageRejected) a
   * digest other than the one asked for, a format other than qcow2 or raw, a qcow2 image that
   * names another file, and a source larger than `maxBytes`. Each attempt writes a part file
   * of its own, so an attempt still running when the next begins never touches the next's;
   * nothing is left in the store but a kept image.
   */
  async import(id: string, options: ImportOptions): Promise<ImportedImage> {
    await mkdir(this.dir, { recursive: true });
    const part = path.join(this.dir, `${checkedId(id)}.${randomUUID().slice(0, 8)}.part`);
    try {
      const { sha256, sizeBytes } = await this.#receive(part, options);
      const { sha256: asked } = options.asked;
      if (asked !== null && asked !== sha256) {
        throw new ImageRejected(`its SHA-256 is ${sha256}, not the ${asked} asked for`);
      }
      const { format, virtualSize } = await inspect(part, options.asked.format);
      // An attempt given up on (its heartbeat lost) leaves the store to the next one.
      options.signal?.throwIfAborted();
      await rename(part, this.fileOf(id, format));
      // What attempts lost with their worker left (a SIGKILL runs no finally) goes now.
      await this.#removeMatching(id, (n) => n.endsWith('.part'));
      return { format, sha256, sizeBytes, virtualSize };
    } finally {
      await rm(part, { force: true });
    }
  }

  /** Removes whatever the store holds of an image: its file, and any attempt's part file. */
  async remove(id: string): Promise<void> {
    await this.#removeMatching(id, () => true);
  }

  async #removeMatching(id: string, which: (name: string) => boolean): Promise<void> {
    const prefix = `${checkedId(id)}.`;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(prefix) && which(n))
        .map((n) => rm(path.join(this.dir, n), { force: true })),
    );
  }

  async #receive(
    part: string,
    options: ImportOptions,
  ): Promise<{ sha256: string; sizeBytes: number }> {
    const out = await open(part, 'wx', 0o644);
    const hash = createHash('sha256');
    let done = 0;
    let total: number | null;
    let reported = 0;
    let writing: Promise<unknown> = Promise.resolve();
    try {
      const source = await openSource(
        options.source,
        options.policy,
        options.maxBytes,
        options.signal,
      );
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
      for await (const chunk of source.chunks) {
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
