import { randomUUID } from 'node:crypto';
import { jsonb, type Queryable, type Sql } from './db.ts';
import { KeyConflictError, NotFoundError, StateConflictError } from './errors.ts';
import type { VmImage } from './types.ts';

export type ImageFormat = 'raw' | 'qcow2';
export type ImageStatus = 'importing' | 'ready' | 'failed' | 'deleting';

export interface Image {
  id: string;
  name: string;
  source: string;
  status: ImageStatus;
  /** What the caller asked the image to be: the import fails unless it is. */
  asked: { format: ImageFormat | null; sha256: string | null };
  /** Once ready. */
  format: ImageFormat | null;
  sha256: string | null;
  sizeBytes: number | null;
  virtualSize: number | null;
  /** Once failed: why. */
  error: string | null;
  /** Direct kernel boot: the images holding the kernel and initrd, and the command line. */
  boot: ImageBoot | null;
  /** The import's workflow run. */
  workflowId: string;
  runId: string | null;
  createdAt: string;
  readyAt: string | null;
}

/** What an import found: recorded when the image becomes ready. */
export interface ImportedImage {
  format: ImageFormat;
  sha256: string;
  sizeBytes: number;
  virtualSize: number;
}

export interface ImageBoot {
  kernel: { id: string; name: string };
  initrd?: { id: string; name: string };
  cmdline?: string;
}

export interface NewImage {
  name: string;
  source: string;
  format?: ImageFormat | undefined;
  sha256?: string | undefined;
  boot?: ImageBoot | undefined;
}

interface ImageRow {
  id: string;
  name: string;
  source: string;
  status: ImageStatus;
  format_asked: ImageFormat | null;
  sha256_asked: string | null;
  format: ImageFormat | null;
  sha256: string | null;
  size_bytes: string | null;
  virtual_size: string | null;
  error: string | null;
  boot: ImageBoot | null;
  workflow_id: string;
  run_id: string | null;
  created_at: Date;
  ready_at: Date | null;
}

function toImage(r: ImageRow): Image {
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    status: r.status,
    asked: { format: r.format_asked, sha256: r.sha256_asked },
    format: r.format,
    sha256: r.sha256,
    sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
    virtualSize: r.virtual_size === null ? null : Number(r.virtual_size),
    error: r.error,
    boot: r.boot,
    workflowId: r.workflow_id,
    runId: r.run_id,
    createdAt: r.created_at.toISOString(),
    readyAt: r.ready_at?.toISOString() ?? null,
  };
}

/**
 * Records an image about to be imported, under the id its workflow is named for
 * (`workflowIdOf`). A name an image already has is a KeyConflict.
 */
export async function createImage(
  sql: Sql,
  image: NewImage,
  workflowIdOf: (id: string) => string,
): Promise<Image> {
  const id = randomUUID();
  const { boot } = image;
  try {
    // The images it boots from are held ready until it is recorded naming them.
    const [row] = await sql.begin(async (tx) => {
      for (const part of [boot?.kernel, boot?.initrd]) {
        if (part) await holdImage(tx, part.id, part.name);
      }
      return tx<ImageRow[]>`
        INSERT INTO images (id, name, source, format_asked, sha256_asked, boot, workflow_id)
        VALUES (${id}, ${image.name}, ${image.source}, ${image.format ?? null},
                ${image.sha256 ?? null}, ${boot ? jsonb(tx, boot) : null}, ${workflowIdOf(id)})
        RETURNING *`;
    });
    return toImage(row!);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') {
      throw new KeyConflictError(`image:${image.name}`, `image ${image.name}`, { cause: err });
    }
    throw err;
  }
}

/** The import's run, once started. */
export async function setImageRun(sql: Queryable, id: string, runId: string): Promise<void> {
  await sql`UPDATE images SET run_id = ${runId} WHERE id = ${id}`;
}

/** Forgets an image whose import could not even start: nothing else was made for it. */
export async function forgetImage(sql: Queryable, id: string): Promise<void> {
  await sql`DELETE FROM images WHERE id = ${id}`;
}

export async function getImage(sql: Queryable, name: string): Promise<Image> {
  const [row] = await sql<ImageRow[]>`SELECT * FROM images WHERE name = ${name}`;
  if (!row) throw new NotFoundError('image', name);
  return toImage(row);
}

export async function getImageById(sql: Queryable, id: string): Promise<Image> {
  const [row] = await sql<ImageRow[]>`SELECT * FROM images WHERE id = ${id}`;
  if (!row) throw new NotFoundError('image', id);
  return toImage(row);
}

export async function listImages(sql: Queryable): Promise<Image[]> {
  const rows = await sql<ImageRow[]>`SELECT * FROM images ORDER BY name`;
  return rows.map(toImage);
}

/**
 * An import that ended well: the image may now be used. Answers whether the image is ready
 * now (a retry finds it so); false where it was deleted or failed meanwhile.
 */
export async function markImageReady(
  sql: Queryable,
  id: string,
  found: ImportedImage,
): Promise<boolean> {
  await sql`
    UPDATE images SET status = 'ready', format = ${found.format}, sha256 = ${found.sha256},
      size_bytes = ${found.sizeBytes}, virtual_size = ${found.virtualSize}, ready_at = now()
    WHERE id = ${id} AND status = 'importing'`;
  const [row] = await sql<{ status: ImageStatus }[]>`SELECT status FROM images WHERE id = ${id}`;
  return row?.status === 'ready';
}

/** An import that failed, and why (in vagoth's words). */
export async function markImageFailed(sql: Queryable, id: string, reason: string): Promise<void> {
  await sql`
    UPDATE images SET status = 'failed', error = ${reason.slice(0, 2000)}
    WHERE id = ${id} AND status = 'importing'`;
}

/**
 * Marks an image for deletion; refused while it is being imported (its workflow owns it
 * until it ends). An image already being deleted is answered as it is, so a retried
 * request joins the deletion under way.
 */
export async function beginImageDeletion(sql: Sql, name: string): Promise<Image> {
  return sql.begin(async (tx) => {
    const [row] = await tx<ImageRow[]>`SELECT * FROM images WHERE name = ${name} FOR UPDATE`;
    if (!row) throw new NotFoundError('image', name);
    if (row.status === 'importing')
      throw new StateConflictError(`image ${name}`, 'importing', 'delete');
    if (row.status === 'deleting') return toImage(row);
    const users = await imageUsers(tx, row.id);
    if (users.length > 0) {
      const listed = users.slice(0, 5).join(', ') + (users.length > 5 ? ', ...' : '');
      throw new StateConflictError(`image ${name}`, `used by ${listed}`, 'delete');
    }
    const [updated] = await tx<ImageRow[]>`
      UPDATE images SET status = 'deleting' WHERE id = ${row.id} RETURNING *`;
    return toImage(updated!);
  });
}

/** Removes the record of an image whose file is gone. */
export async function dropImage(sql: Queryable, id: string): Promise<void> {
  await sql`DELETE FROM images WHERE id = ${id} AND status = 'deleting'`;
}

/**
 * A ready image as a VM records it, with the images it boots from; an image not ready (yet,
 * or any more) is refused.
 */
export async function usableImage(sql: Queryable, image: Image): Promise<VmImage> {
  const stored = storedImage(image);
  if (image.status !== 'ready' || !stored) {
    throw new StateConflictError(`image ${image.name}`, image.status, 'create a VM from');
  }
  const { boot } = image;
  const part = async (ref: { id: string }) => usableImage(sql, await getImageById(sql, ref.id));
  return {
    ...stored,
    ...(boot
      ? {
          boot: {
            kernel: await part(boot.kernel),
            ...(boot.initrd ? { initrd: await part(boot.initrd) } : {}),
            ...(boot.cmdline !== undefined ? { cmdline: boot.cmdline } : {}),
          },
        }
      : {}),
  };
}

/**
 * What an import found of an image, as a VM or a host's copy names it (without the images it
 * boots); null for an image whose import never finished.
 */
export function storedImage(image: Image): VmImage | null {
  const { format, sha256, sizeBytes, virtualSize } = image;
  if (!format || !sha256 || sizeBytes === null || virtualSize === null) return null;
  return { id: image.id, name: image.name, format, sha256, sizeBytes, virtualSize };
}

/** The images a VM's image is made of: itself, and the kernel and initrd it boots. */
export function imageParts(image: VmImage): VmImage[] {
  const { kernel, initrd } = image.boot ?? {};
  return [image, ...(kernel ? [kernel] : []), ...(initrd ? [initrd] : [])];
}

/**
 * What uses the image (at most 6): the VMs recorded as built from it or booting from it, and
 * the images that boot from it.
 */
export async function imageUsers(sql: Queryable, id: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    (SELECT 'VM ' || name AS name FROM nodes
     WHERE type = 'vm' AND (definition -> 'image' ->> 'id' = ${id}
       OR definition -> 'image' -> 'boot' -> 'kernel' ->> 'id' = ${id}
       OR definition -> 'image' -> 'boot' -> 'initrd' ->> 'id' = ${id}))
    UNION ALL
    (SELECT 'image ' || name FROM images
     WHERE boot -> 'kernel' ->> 'id' = ${id} OR boot -> 'initrd' ->> 'id' = ${id})
    ORDER BY name LIMIT 6`;
  return rows.map((r) => r.name);
}

/**
 * Within a transaction that records a VM built from the image: holds it ready until that
 * transaction ends, so it cannot begin to be deleted meanwhile.
 */
export async function holdImage(sql: Queryable, id: string, name: string): Promise<void> {
  const [row] = await sql<{ status: ImageStatus }[]>`
    SELECT status FROM images WHERE id = ${id} FOR SHARE`;
  if (!row) throw new NotFoundError('image', name);
  if (row.status !== 'ready')
    throw new StateConflictError(`image ${name}`, row.status, 'create a VM from');
}
