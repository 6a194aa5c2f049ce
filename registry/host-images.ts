import { NotFoundError } from './errors.ts';
import { isPgError, type Queryable } from './db.ts';

/** A host's copy of an image, as the registry records it. */
export interface HostImage {
  hostId: string;
  hostName: string;
  imageId: string;
  pool: string;
  volume: string;
  status: 'copying' | 'ready';
  copies: number;
}

interface HostImageRow {
  host_id: string;
  host_name: string;
  image_id: string;
  pool: string;
  volume: string;
  status: 'copying' | 'ready';
  copies: number;
}

const toHostImage = (r: HostImageRow): HostImage => ({
  hostId: r.host_id,
  hostName: r.host_name,
  imageId: r.image_id,
  pool: r.pool,
  volume: r.volume,
  status: r.status,
  copies: r.copies,
});

/** How long a copy's lease lasts unless renewed: a dead copier's passes on after this. */
export const COPY_LEASE_SECONDS = 30;

/**
 * What asking for an image on a host answers: it is `ready` there; or the lease is the
 * caller's (`copy`: it copies, renewing the lease, then calls markHostImageReady); or another
 * copier holds it (`wait`, and ask again).
 */
export type HostImageTurn = 'ready' | 'copy' | 'wait';

/**
 * Records (once) that `image` belongs in `pool/volume` on the host, and takes the copy's lease
 * for `copier` unless the copy is ready or another holds a lease still running. A copier that
 * asks again (a retried attempt of the same activity) gets its lease back.
 */
export async function takeHostImage(
  sql: Queryable,
  hostId: string,
  imageId: string,
  where: { pool: string; volume: string },
  copier: string,
): Promise<HostImageTurn> {
  try {
    return await askForHostImage(sql, hostId, imageId, where, copier);
  } catch (err) {
    // The first two asks for an image on a host at once (two VMs of it placed there together):
    // ON CONFLICT arbitrates on (host_id, image_id) only, so the later insert meets the earlier,
    // still in flight, on the other unique key (its volume) and fails there once the earlier
    // commits. Asked again, it finds that row through the arbiter like any later ask.
    if (!isPgError(err, '23505') || err.constraint_name !== 'host_images_host_id_pool_volume_key') {
      throw err;
    }
    return askForHostImage(sql, hostId, imageId, where, copier);
  }
}

async function askForHostImage(
  sql: Queryable,
  hostId: string,
  imageId: string,
  where: { pool: string; volume: string },
  copier: string,
): Promise<HostImageTurn> {
  const [row] = await sql<{ status: 'copying' | 'ready'; copier: string | null }[]>`
    INSERT INTO host_images AS h (host_id, image_id, pool, volume, copier, lease_until, copies)
    VALUES (${hostId}, ${imageId}, ${where.pool}, ${where.volume}, ${copier},
            now() + make_interval(secs => ${COPY_LEASE_SECONDS}), 1)
    ON CONFLICT (host_id, image_id) DO UPDATE SET
      copier = ${copier},
      lease_until = now() + make_interval(secs => ${COPY_LEASE_SECONDS}),
      copies = h.copies + CASE WHEN h.copier = ${copier} THEN 0 ELSE 1 END
    WHERE h.status = 'copying'
      AND (h.copier IS NULL OR h.copier = ${copier} OR h.lease_until < now())
    RETURNING h.status, h.copier`;
  if (row) return 'copy';
  const [now] = await sql<{ status: 'copying' | 'ready' }[]>`
    SELECT status FROM host_images WHERE host_id = ${hostId} AND image_id = ${imageId}`;
  return now?.status === 'ready' ? 'ready' : 'wait';
}

/**
 * What the copier does with its lease: `renew` it (the copy goes on), `release` it (the copy
 * failed: the next to ask takes it at once), or give it up as `ready` (the copy is whole and
 * checked: every VM of the image on the host may use it). False when the lease is no longer
 * the copier's: it must stop.
 */
export async function settleHostImageLease(
  sql: Queryable,
  hostId: string,
  imageId: string,
  copier: string,
  change: 'renew' | 'release' | 'ready',
): Promise<boolean> {
  const set =
    change === 'renew'
      ? sql`lease_until = now() + make_interval(secs => ${COPY_LEASE_SECONDS})`
      : change === 'release'
        ? sql`copier = NULL, lease_until = NULL`
        : sql`status = 'ready', ready_at = now(), copier = NULL, lease_until = NULL`;
  const rows = await sql`
    UPDATE host_images SET ${set}
    WHERE host_id = ${hostId} AND image_id = ${imageId} AND copier = ${copier}
      AND status = 'copying'`;
  return rows.count === 1;
}

/**
 * A copy recorded ready that the host no longer holds (removed by hand): to be copied again,
 * by whoever asks next.
 */
export async function forgetHostImageCopy(
  sql: Queryable,
  hostId: string,
  imageId: string,
): Promise<void> {
  await sql`
    UPDATE host_images SET status = 'copying', ready_at = NULL, copier = NULL, lease_until = NULL
    WHERE host_id = ${hostId} AND image_id = ${imageId} AND status = 'ready'`;
}

/** Every host's copy of an image, for its deletion. */
export async function hostImagesOf(sql: Queryable, imageId: string): Promise<HostImage[]> {
  const rows = await sql<HostImageRow[]>`
    SELECT h.*, n.name AS host_name FROM host_images h JOIN nodes n ON n.id = h.host_id
    WHERE h.image_id = ${imageId} ORDER BY n.name`;
  return rows.map(toHostImage);
}

/** The host's copy is deleted: off the record. */
export async function dropHostImage(
  sql: Queryable,
  hostId: string,
  imageId: string,
): Promise<void> {
  await sql`DELETE FROM host_images WHERE host_id = ${hostId} AND image_id = ${imageId}`;
}

/** A host's id by its name, for the calls above; NotFound when there is none. */
export async function hostIdByName(sql: Queryable, name: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    SELECT id FROM nodes WHERE type = 'host' AND name = ${name}`;
  if (!row) throw new NotFoundError('host', name);
  return row.id;
}
