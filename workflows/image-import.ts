import { CancellationScope } from '@temporalio/workflow';
import type { ImportedImage } from '../common/messages.ts';
import { rootFailure } from './failure.ts';
import { cleanup, importing, steps } from './proxies.ts';

/**
 * Imports an image recorded by images.create: streams it into the image store, checking its
 * digest and format (activities/images.ts), then records what it found, and the image is
 * ready. A failed import is recorded with its reason and leaves nothing in the store; the
 * run then fails with that reason too, for operations.get and the Temporal UI.
 */
export async function importImage(image: { id: string; name: string }): Promise<ImportedImage> {
  try {
    const found = await importing.fetchImage(image.id);
    await steps.recordImage(image.id, found);
    return found;
  } catch (err) {
    // Also when the run was cancelled: the record and the store are settled all the same.
    const reason = rootFailure(err).message;
    await CancellationScope.nonCancellable(() => cleanup.failImage(image.id, reason));
    throw err;
  }
}

/** Removes an image marked for deletion: its file from the store, then its record. */
export async function deleteImage(image: { id: string; name: string }): Promise<void> {
  await cleanup.removeImage(image.id);
}
