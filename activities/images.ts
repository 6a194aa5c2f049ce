import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ImageRejected, type ImageStore } from '../images/store.ts';
import { admitImageSource, ImageSourceError, type ImageSourcePolicy } from '../images/sources.ts';
import type { DriverPool } from '../drivers/index.ts';
import type { Sql } from '../registry/db.ts';
import { dropHostImage, hostImagesOf } from '../registry/host-images.ts';
import { getHost } from '../registry/hosts.ts';
import { describeDomainError, NotFoundError } from '../registry/errors.ts';
import {
  dropImage,
  getImageById,
  markImageFailed,
  markImageReady,
  storedImage,
  type ImportedImage,
} from '../registry/images.ts';

export interface ImageActivityDeps {
  sql: Sql;
  drivers: DriverPool;
  store: ImageStore;
  /** Where images may be read from: the worker's own configuration decides, not the API's. */
  sources: ImageSourcePolicy;
  maxBytes: number;
}

/** A refusal in vagoth's words is the caller's to read; any other error goes to the log only. */
function importFailure(err: unknown): unknown {
  if (err instanceof ImageRejected || err instanceof ImageSourceError) {
    if (err.cause !== undefined) log.warn(err.message, { detail: String(err.cause) });
    return ApplicationFailure.create({
      type: 'ImageRejected',
      message: `image refused: ${err.message}`,
      nonRetryable: true,
    });
  }
  if (err instanceof ApplicationFailure || describeDomainError(err)) return err;
  const code = (err as { code?: unknown }).code;
  log.warn('image import failed', { error: String(err) });
  return new Error(
    `reading or storing the image failed${typeof code === 'string' ? ` (${code})` : ''}`,
  );
}

export function createImageActivities({
  sql,
  drivers,
  store,
  sources,
  maxBytes,
}: ImageActivityDeps) {
  return {
    /**
     * Streams an image into the store, heartbeating the bytes read (images.get shows them). A
     * source that sends nothing for a minute fails the attempt (download.ts), and the next one
     * starts over.
     */
    async fetchImage(id: string): Promise<ImportedImage> {
      let last: { done: number; total: number | null } = { done: 0, total: null };
      // Alive through the sync and qemu-img too; a source that stalls is given up on by the
      // download itself (a minute without a byte).
      const timer = setInterval(() => heartbeat(last), 10_000);
      try {
        const image = await getImageById(sql, id);
        if (image.status !== 'importing') {
          throw new ImageRejected(`the image is ${image.status}: it is no longer imported`);
        }
        const source = admitImageSource(image.source, sources);
        return await store.import(id, {
          source,
          policy: sources,
          asked: image.asked,
          maxBytes,
          signal: cancellationSignal(),
          onProgress: (done, total) => {
            last = { done, total };
            heartbeat(last);
          },
        });
      } catch (err) {
        throw importFailure(err);
      } finally {
        clearInterval(timer);
      }
    },

    /** Records an import's result; an image deleted meanwhile has its file removed instead. */
    async recordImage(id: string, found: ImportedImage): Promise<void> {
      if (await markImageReady(sql, id, found)) return;
      await store.remove(id);
      throw new NotFoundError('image', id);
    },

    /** An import that failed leaves nothing in the store, and its reason on the record. */
    async failImage(id: string, reason: string): Promise<void> {
      await store.remove(id);
      await markImageFailed(sql, id, reason);
    },

    /**
     * Removes an image marked for deletion (no VM uses it: beginImageDeletion checked, under
     * lock): each host's copy, then its file in the store, then its record.
     */
    async removeImage(id: string): Promise<void> {
      const image = storedImage(await getImageById(sql, id));
      for (const copy of await hostImagesOf(sql, id)) {
        if (image) {
          const host = await getHost(sql, copy.hostName);
          await drivers.get(host).removeImage?.(image, { pool: copy.pool, name: copy.volume });
        }
        await dropHostImage(sql, copy.hostId, id);
      }
      await store.remove(id);
      await dropImage(sql, id);
    },
  };
}
