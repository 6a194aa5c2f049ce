import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceActivities } from '../../services/activities.ts';
import type { CloudDriver } from '../../services/clouds/driver.ts';
import { otherClouds } from '../../services/clouds/index.ts';
import { migrateServices } from '../../services/migrate.ts';
import {
  holdMinted,
  queueRevocations,
  startRevocationSweep,
  sweepRevocations,
} from '../../services/revocations.ts';
import {
  createService,
  markDeleting,
  replaceServiceToken,
  ServiceConflictError,
  type ServiceSpecInput,
} from '../../services/store.ts';
import { createTestDatabase } from '../support/harness.ts';

/** Tokens the service layer let go: none forgotten, none in use revoked, the sweep stoppable. */
describe('the queue of revocations, under interleavings', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const spec: ServiceSpecInput = {
    template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
    replicas: 0,
    spread: 'host',
    rollout: { maxUnavailable: 0, maxSurge: 1 },
    everySeconds: 30,
    placements: null,
    unknownGraceSeconds: 120,
    health: null,
    unhealthyAfter: 3,
  };
  /** A cloud that revokes what it is asked to, slowly if told to; each call recorded. */
  const revoked: string[] = [];
  let revokeMs = 0;
  const cloudFor = (): CloudDriver =>
    ({
      revokeToken: async (id: string) => {
        await new Promise((r) => setTimeout(r, revokeMs));
        revoked.push(id);
      },
    }) as unknown as CloudDriver;
  /** Whether a token is still the service's, or queued to be revoked, or revoked: anywhere. */
  const accountedFor = async (token: { id: string; token: string }) => {
    const [held] = await db.sql`SELECT 1 FROM services.services WHERE token = ${token.token}`;
    const [queued] = await db.sql`
      SELECT 1 FROM services.revocations WHERE cloud = '' AND token_id = ${token.id}`;
    return held !== undefined || queued !== undefined || revoked.includes(token.id);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    await migrateServices(db.sql);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('stops its sweep at once when stopped while a sweep runs', async () => {
    await queueRevocations(db.sql, 'shop/slow', [{ cloud: null, token: 'slow', tokenId: 'slow' }]);
    revokeMs = 300;
    const sweep = startRevocationSweep({ sql: db.sql, cloudFor }, 30_000);
    // Stopped while its first sweep is still at the cloud.
    await new Promise((r) => setTimeout(r, 100));
    const asked = Date.now();
    await sweep.stop();
    revokeMs = 0;
    expect(revoked).toContain('slow');
    expect(Date.now() - asked).toBeLessThan(5_000);
  }, 40_000);

  it('forgets no token when two renewals of a dead one race', async () => {
    const s = await createService(db.sql, {
      ...spec,
      project: 'shop',
      name: 'renewed',
      createdBy: 'ann',
      token: 'dead',
      tokenId: 'dead-id',
    });
    // Two calls (an update and a resume) each found `dead` dead and minted a token in its place.
    const first = { id: 'first-id', token: 'first' };
    const second = { id: 'second-id', token: 'second' };
    const was = { token: 'dead', service: 'shop/renewed' };
    await replaceServiceToken(db.sql, s.id, 'ann', first, was);
    await replaceServiceToken(db.sql, s.id, 'bob', second, was);
    expect(await accountedFor(first)).toBe(true);
    expect(await accountedFor(second)).toBe(true);
    // The one that took the dead one's place first is kept: it is in use.
    const [row] = await db.sql`SELECT token FROM services.services WHERE id = ${s.id}`;
    expect(row!.token).toBe('first');
  });

  it('forgets no token renewed while a deleted service is being removed', async () => {
    const s = await createService(db.sql, {
      ...spec,
      project: 'shop',
      name: 'leaving',
      createdBy: 'ann',
      token: 'old',
      tokenId: 'old-id',
    });
    await markDeleting(db.sql, s.id, 'ann');
    const renewed = { id: 'renewed-id', token: 'renewed' };
    const activities = createServiceActivities({
      sql: db.sql,
      cloudFor,
      // The delete's call renews the service's token (its own found dead) as the last
      // reconcile removes it.
      dropSchedule: async () => {
        await replaceServiceToken(db.sql, s.id, 'bob', renewed, {
          token: 'old',
          service: 'shop/leaving',
        });
      },
      probe: () => Promise.reject(new Error('no probe here')),
    });
    expect(await activities.reconcileService(s.id)).toMatchObject({ removed: true });
    expect(await accountedFor(renewed)).toBe(true);
  });

  it('keeps a token minted for a call that never stored it queued, held back, then swept', async () => {
    revoked.length = 0;
    // The API minted it and stopped before its transaction: only the hold records it.
    await holdMinted(db.sql, 'shop/lost', [{ cloud: null, token: 'lost', tokenId: 'lost-id' }]);
    const [held] = await db.sql<{ wait: number; attempts: number }[]>`
      SELECT extract(epoch FROM next_at - now())::float AS wait, attempts
      FROM services.revocations WHERE token_id = 'lost-id'`;
    expect(held!.attempts).toBe(0);
    expect(held!.wait).toBeGreaterThan(14 * 60);
    // Not due: a sweep leaves it (a call still under way may store it yet).
    await sweepRevocations({ sql: db.sql, cloudFor });
    expect(revoked).not.toContain('lost-id');
    await db.sql`UPDATE services.revocations SET next_at = now() WHERE token_id = 'lost-id'`;
    await sweepRevocations({ sql: db.sql, cloudFor });
    expect(revoked).toContain('lost-id');
    expect(await db.sql`SELECT 1 FROM services.revocations WHERE token_id = 'lost-id'`).toEqual([]);
  });

  it('takes back the hold of what it stores, and stores nothing a sweep tried already', async () => {
    const own = { cloud: null, token: 'kept', tokenId: 'kept-id' };
    const far = { cloud: 'east', project: 'outlet', token: 'far', tokenId: 'far-id' };
    await holdMinted(db.sql, 'shop/kept', [own, far]);
    const input = {
      ...spec,
      placements: [{ cloud: 'east', replicas: 1 }],
      replicas: 1,
      project: 'shop',
      createdBy: 'ann',
    };
    await createService(db.sql, {
      ...input,
      name: 'kept',
      token: own.token,
      tokenId: own.tokenId,
      cloudTokens: [far],
    });
    expect(
      await db.sql`SELECT 1 FROM services.revocations WHERE token_id IN ('kept-id', 'far-id')`,
    ).toHaveLength(0);

    // A sweep took the hold of this one (the call took over 15 minutes): it may be revoked.
    const late = { cloud: 'east', project: 'outlet', token: 'late', tokenId: 'late-id' };
    await holdMinted(db.sql, 'shop/late', [late]);
    await db.sql`UPDATE services.revocations SET attempts = 1 WHERE token_id = 'late-id'`;
    const err = await createService(db.sql, {
      ...input,
      name: 'late',
      token: 'own-late',
      tokenId: null,
      cloudTokens: [late],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceConflictError);
    expect(await db.sql`SELECT 1 FROM services.services WHERE name = 'late'`).toHaveLength(0);
    expect(
      await db.sql`SELECT attempts FROM services.revocations WHERE token_id = 'late-id'`,
    ).toEqual([{ attempts: 1 }]);
  });

  it('sends no queued token to a cloud its name now points elsewhere', async () => {
    const clouds = otherClouds({ east: 'http://127.0.0.1:9/now/trpc' }, 500);
    await queueRevocations(db.sql, 'shop/moved', [
      { cloud: 'east', token: 'moved', tokenId: 'moved-id', url: 'http://127.0.0.1:9/then/trpc' },
    ]);
    await db.sql`UPDATE services.revocations SET next_at = now() WHERE token_id = 'moved-id'`;
    await sweepRevocations({ sql: db.sql, cloudFor, clouds });
    expect(
      await db.sql`SELECT attempts, last_error FROM services.revocations WHERE token_id = 'moved-id'`,
    ).toEqual([
      {
        attempts: 1,
        last_error:
          'cloud east is not among the clouds allowed here, or not at the URL that minted it',
      },
    ]);
  });
});
