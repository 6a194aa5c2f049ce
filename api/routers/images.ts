import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { TRPCError } from '@trpc/server';
import { attributePairs } from '../../common/search-attributes.ts';
import { imageDeleteWorkflowId, imageImportWorkflowId } from '../../common/vocabulary.ts';
import { admitImageSource, ImageSourceError } from '../../images/sources.ts';
import { InvalidRequestError, NotFoundError, StateConflictError } from '../../registry/errors.ts';
import {
  beginImageDeletion,
  createImage,
  forgetImage,
  getImage,
  listImages,
  markImageFailed,
  setImageRun,
  type Image,
  type ImageBoot,
} from '../../registry/images.ts';
import { deleteImage, importImage } from '../../workflows/index.ts';
import type { Context } from '../context.ts';
import { toOperation, type Operation } from '../operations.ts';
import { byName, imageCreateInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

/** An image as callers see it: its record, and the import's operation (and its Web UI page). */
export type ImageView = Omit<Image, 'workflowId' | 'runId'> & {
  operation: Operation | null;
  /** While importing: bytes read so far, and how many the source announced (null if not). */
  progress?: { done: number; total: number | null };
};

/** A URL's query may carry a signature (a pre-signed download): never shown back. */
function shownSource(source: string): string {
  if (source.startsWith('/') || !URL.canParse(source)) return source;
  const url = new URL(source);
  if (url.search === '') return source;
  url.search = '?(hidden)';
  return url.href;
}

function view(ctx: Context, image: Image): ImageView {
  const { workflowId, runId, source, ...rest } = image;
  const operation =
    runId === null
      ? null
      : toOperation({ kind: 'import', workflowId, runId }, ctx.temporalUiUrl, ctx.namespace);
  return { ...rest, source: shownSource(source), operation };
}

/** The bytes the import's activity last heartbeated, if it is under way. */
async function progressOf(ctx: Context, image: Image): Promise<ImageView['progress']> {
  const d = await ctx.temporal.workflow
    .getHandle(image.workflowId, image.runId ?? undefined)
    .describe()
    .catch(() => null);
  const payload = d?.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  const p = defaultPayloadConverter.fromPayload(payload) as { done?: unknown; total?: unknown };
  if (typeof p?.done !== 'number') return undefined;
  return { done: p.done, total: typeof p.total === 'number' ? p.total : null };
}

/** How long an import's run may take to appear before its image counts as orphaned. */
const ORPHAN_AFTER_MS = 60_000;
/** How long images.delete waits for the deletion before saying it is still under way. */
const DELETE_WAIT_MS = 30_000;

/**
 * An image still `importing` whose import is not under way (its start was lost with the API
 * process, or an operator terminated the run): recorded as failed, so it can be deleted.
 */
async function settleOrphan(ctx: Context, image: Image): Promise<void> {
  if (image.status !== 'importing') return;
  const status = await ctx.temporal.workflow
    .getHandle(image.workflowId)
    .describe()
    .then(
      (d) => d.status.name,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
        throw err;
      },
    );
  if (status === 'RUNNING') return;
  // A run not found yet may be one whose start is still under way.
  const age = Date.now() - Date.parse(image.createdAt);
  if (status === 'NOT_FOUND' && age < ORPHAN_AFTER_MS) {
    throw new StateConflictError(`image ${image.name}`, 'starting its import', 'delete');
  }
  await markImageFailed(ctx.sql, image.id, 'its import ended without recording a result');
}

/**
 * The images `boot` names, each ready and booting nothing itself; any other is BAD_REQUEST
 * naming `boot.kernel` or `boot.initrd`.
 */
async function bootOf(
  ctx: Context,
  boot: { kernel: string; initrd?: string | undefined; cmdline?: string | undefined },
): Promise<ImageBoot> {
  const part = async (field: 'kernel' | 'initrd', name: string) => {
    const image = await getImage(ctx.sql, name).catch((err: unknown) => {
      if (err instanceof NotFoundError) {
        throw new InvalidRequestError(`boot.${field}`, `no image named ${name}`);
      }
      throw err;
    });
    if (image.status !== 'ready') {
      throw new InvalidRequestError(`boot.${field}`, `image ${name} is ${image.status}, not ready`);
    }
    if (image.boot) {
      throw new InvalidRequestError(`boot.${field}`, `image ${name} boots a kernel of its own`);
    }
    return { id: image.id, name: image.name };
  };
  return {
    kernel: await part('kernel', boot.kernel),
    ...(boot.initrd !== undefined ? { initrd: await part('initrd', boot.initrd) } : {}),
    ...(boot.cmdline !== undefined ? { cmdline: boot.cmdline } : {}),
  };
}

export const imagesRouter = router({
  /**
   * Records an image and starts its import (workflows/image-import.ts); answers at once with
   * the image (`importing`) and the import's operation. A source outside the operator's lists
   * is BAD_REQUEST naming `source`, before anything is recorded; a name taken is CONFLICT.
   */
  create: procedure.input(imageCreateInput).mutation(async ({ ctx, input }) => {
    try {
      admitImageSource(input.source, ctx.imageSources ?? { dirs: [], urls: [] });
    } catch (err) {
      if (err instanceof ImageSourceError) throw new InvalidRequestError('source', err.message);
      throw err;
    }
    const boot = input.boot && (await bootOf(ctx, input.boot));
    const image = await createImage(ctx.sql, { ...input, boot }, imageImportWorkflowId);
    let runId: string;
    try {
      const handle = await ctx.temporal.workflow.start(importImage, {
        args: [{ id: image.id, name: image.name }],
        taskQueue: ctx.taskQueue,
        workflowId: image.workflowId,
        staticSummary: `import image ${image.name}`,
        typedSearchAttributes: attributePairs({ VagothKind: 'image' }),
      });
      runId = handle.firstExecutionRunId;
    } catch (err) {
      await forgetImage(ctx.sql, image.id);
      throw err;
    }
    await setImageRun(ctx.sql, image.id, runId);
    return view(ctx, { ...image, runId });
  }),

  list: procedure.query(async ({ ctx }) =>
    (await listImages(ctx.sql)).map((image) => view(ctx, image)),
  ),

  get: procedure.input(byName).query(async ({ ctx, input }) => {
    const image = await getImage(ctx.sql, input.name);
    if (image.status !== 'importing') return view(ctx, image);
    const progress = await progressOf(ctx, image);
    return { ...view(ctx, image), ...(progress ? { progress } : {}) };
  }),

  /**
   * Removes an image from the store and the registry; refused (PRECONDITION_FAILED) while it
   * is being imported. Answers once it is gone.
   */
  delete: procedure.input(byName).mutation(async ({ ctx, input }) => {
    await settleOrphan(ctx, await getImage(ctx.sql, input.name));
    const image = await beginImageDeletion(ctx.sql, input.name);
    const handle = await ctx.temporal.workflow.start(deleteImage, {
      args: [{ id: image.id, name: image.name }],
      taskQueue: ctx.taskQueue,
      workflowId: imageDeleteWorkflowId(image.id),
      staticSummary: `delete image ${image.name}`,
      typedSearchAttributes: attributePairs({ VagothKind: 'image' }),
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    // A store that cannot be written keeps the deletion retrying: the caller is told, not held.
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => {
      timer = setTimeout(() => resolve('waited'), DELETE_WAIT_MS);
    });
    const outcome = await Promise.race([handle.result(), waited]).finally(() =>
      clearTimeout(timer),
    );
    if (outcome === 'waited') {
      throw new TRPCError({
        code: 'TIMEOUT',
        message: `image ${image.name} is still being deleted (it shows as deleting); ask again to wait on`,
      });
    }
    return { name: image.name, deleted: true as const };
  }),
});
