import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServices } from '../../services/migrate.ts';
import {
  addMember,
  createService,
  getService,
  listServices,
  markDeleting,
  membersOf,
  removeService,
  saveReconcile,
  serviceEvents,
  ServiceConflictError,
  ServiceInputError,
  ServiceNotFoundError,
  updateService,
  type ServiceSpecInput,
} from '../../services/store.ts';
import { endStep, renewStep, StepLeaseLostError, takeStep } from '../../services/step-lease.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { createTestDatabase } from '../support/harness.ts';

/** The service layer's records, in their own schema of a real PostgreSQL. */
describe('the service layer’s records', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const spec: ServiceSpecInput = {
    template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
    replicas: 3,
    spread: 'host',
    rollout: { maxUnavailable: 0, maxSurge: 1 },
    everySeconds: 30,
    placements: null,
    unknownGraceSeconds: 120,
    health: { tcp: 80 },
    unhealthyAfter: 3,
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    expect(await migrateServices(db.sql)).toEqual([
      '001_services.sql',
      '002_members_state.sql',
      '003_other_clouds.sql',
      '004_revocations.sql',
      '005_token_urls.sql',
    ]);
    // Applied once: a second process starting finds nothing to do.
    expect(await migrateServices(db.sql)).toEqual([]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('keeps one service of a name per project, and reads it back as declared', async () => {
    const made = await createService(db.sql, {
      ...spec,
      project: 'shop',
      name: 'web',
      createdBy: 'ann',
      token: 'vgc_x',
      tokenId: null,
    });
    expect(made).toMatchObject({ ...spec, project: 'shop', name: 'web', paused: false });
    expect(made.revision).toMatch(/^r[0-9a-f]{12}$/);
    await expect(
      createService(db.sql, {
        ...spec,
        project: 'shop',
        name: 'web',
        createdBy: 'bob',
        token: 'vgc_x',
        tokenId: null,
      }),
    ).rejects.toBeInstanceOf(ServiceConflictError);
    await createService(db.sql, {
      ...spec,
      project: 'other',
      name: 'web',
      createdBy: 'bob',
      token: 'vgc_x',
      tokenId: null,
    });
    expect((await listServices(db.sql, 'shop')).map((s) => s.name)).toEqual(['web']);
    await expect(getService(db.sql, 'shop', 'nope')).rejects.toBeInstanceOf(ServiceNotFoundError);
    // A name whose instances would not fit the cloud's names is refused by the table itself.
    await expect(
      createService(db.sql, {
        ...spec,
        project: 'shop',
        name: 'x'.repeat(21),
        createdBy: 'ann',
        token: 'vgc_x',
        tokenId: null,
      }),
    ).rejects.toThrow();
  });

  it('scales a service with placements only by its placements', async () => {
    await createService(db.sql, {
      ...spec,
      replicas: 3,
      placements: [
        { cluster: 'east', replicas: 2 },
        { region: 'west', replicas: 1 },
      ],
      project: 'shop',
      name: 'placed',
      createdBy: 'ann',
      token: 'vgc_x',
      tokenId: null,
    });
    const at = { project: 'shop', name: 'placed' };
    await expect(updateService(db.sql, at, 'ann', { replicas: 5 })).rejects.toBeInstanceOf(
      ServiceConflictError,
    );
    const moved = await updateService(db.sql, at, 'ann', {
      placements: [{ cluster: 'east', replicas: 4 }],
    });
    expect(moved).toMatchObject({ replicas: 4, placements: [{ cluster: 'east', replicas: 4 }] });
    const freed = await updateService(db.sql, at, 'ann', { placements: null, replicas: 6 });
    expect(freed).toMatchObject({ replicas: 6, placements: null });
  });

  it('holds an update to the spread the service was made with: one per cluster stays so', async () => {
    await createService(db.sql, {
      ...spec,
      spread: 'cluster',
      replicas: 2,
      placements: [
        { cluster: 'a', replicas: 1 },
        { cluster: 'b', replicas: 1 },
      ],
      project: 'shop',
      name: 'apart',
      createdBy: 'ann',
      token: 'vgc_x',
      tokenId: null,
    });
    const at = { project: 'shop', name: 'apart' };
    const err = await updateService(db.sql, at, 'ann', {
      placements: [
        { cluster: 'a', replicas: 1 },
        { cluster: 'b', replicas: 2 },
      ],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceInputError);
    expect((err as Error).message).toBe(
      "placements.1.replicas: puts more than one replica in one cluster, which spread 'cluster' forbids",
    );
    expect((await getService(db.sql, 'shop', 'apart')).replicas).toBe(2);
    // A region, or anywhere, may take more: the allocator spreads them over its clusters.
    const wider = await updateService(db.sql, at, 'ann', {
      placements: [
        { cluster: 'a', replicas: 1 },
        { region: 'r', replicas: 3 },
      ],
    });
    expect(wider.replicas).toBe(4);
  });

  it('gives a new revision for a new template only, and records who changed what', async () => {
    const was = await getService(db.sql, 'shop', 'web');
    const scaled = await updateService(db.sql, { project: 'shop', name: 'web' }, 'ann', {
      replicas: 5,
    });
    expect(scaled).toMatchObject({ replicas: 5, revision: was.revision });
    const rolled = await updateService(db.sql, { project: 'shop', name: 'web' }, 'bob', {
      template: { ...spec.template, memoryMiB: 128 },
    });
    expect(rolled.revision).not.toBe(was.revision);
    const events = await serviceEvents(db.sql, was.id, 10);
    expect(events.map((e) => [e.actor, e.action, e.detail])).toEqual([
      [
        'bob',
        'services.update',
        { changed: ['template'], revision: { from: was.revision, to: rolled.revision } },
      ],
      ['ann', 'services.update', { changed: ['replicas'] }],
      ['ann', 'services.create', { replicas: 3, revision: was.revision }],
    ]);
  });

  it('lets one reconcile step at a time record anything, and another take over a lapsed one', async () => {
    const s = await getService(db.sql, 'shop', 'web');
    const [a, b] = [randomUUID(), randomUUID()];
    const member = { name: 'web-7', index: 7, revision: s.revision, createdAt: new Date() };
    expect(await takeStep(db.sql, s.id, a)).toBe(true);
    // B waits while A's lease lasts, and may record nothing.
    expect(await takeStep(db.sql, s.id, b)).toBe(false);
    await expect(addMember(db.sql, s.id, b, member)).rejects.toBeInstanceOf(StepLeaseLostError);
    await expect(
      saveReconcile(db.sql, s.id, b, [], {}, { created: [], deleted: [] }),
    ).rejects.toBeInstanceOf(StepLeaseLostError);
    // A's lease lapses (its worker cut off): B takes over, and A records nothing more.
    await db.sql`UPDATE services.services SET step_until = now() - interval '1 second' WHERE id = ${s.id}`;
    expect(await takeStep(db.sql, s.id, b)).toBe(true);
    await expect(addMember(db.sql, s.id, a, member)).rejects.toBeInstanceOf(StepLeaseLostError);
    await expect(renewStep(db.sql, s.id, a)).rejects.toBeInstanceOf(StepLeaseLostError);
    expect(await membersOf(db.sql, s.id)).toEqual([]);
    await endStep(db.sql, s.id, a); // not A's: changes nothing
    expect(await takeStep(db.sql, s.id, a)).toBe(false);
    await endStep(db.sql, s.id, b);
  });

  it('replaces its members and status in one go, and goes only once it has none', async () => {
    const s = await getService(db.sql, 'shop', 'web');
    const at = new Date('2026-12-06T12:00:00Z');
    // What a step must remember of each until the next: its placement, since when its
    // cluster is silent, its failed checks, why it goes.
    const members = [0, 1, 2].map((index) => ({
      name: `web-${index}`,
      index,
      revision: s.revision,
      createdAt: at,
      // The cloud it is in: the service's own (null), or another's.
      cloud: index === 2 ? 'east' : null,
      placement: index === 2 ? 'cloud:east/cluster:x' : null,
      unknownSince: index === 1 ? new Date('2026-12-06T12:01:00Z') : null,
      failedChecks: index,
      retiring: index === 0 ? 'it failed' : null,
      instanceId: `i-${index}`,
      healthy: index > 0,
    }));
    const step = randomUUID();
    expect(await takeStep(db.sql, s.id, step)).toBe(true);
    await saveReconcile(
      db.sql,
      s.id,
      step,
      members,
      { running: 3 },
      { created: ['web-0', 'web-1', 'web-2'], deleted: [] },
    );
    expect(await membersOf(db.sql, s.id)).toEqual(members);
    await saveReconcile(
      db.sql,
      s.id,
      step,
      members.slice(1),
      { running: 2 },
      { created: [], deleted: ['web-0'] },
    );
    expect((await membersOf(db.sql, s.id)).map((m) => m.name)).toEqual(['web-1', 'web-2']);
    expect((await getService(db.sql, 'shop', 'web')).status).toEqual({ running: 2 });

    // Not while it is not being deleted, nor while it has instances.
    expect(await removeService(db.sql, s.id)).toBeNull();
    await markDeleting(db.sql, s.id, 'ann');
    await expect(
      updateService(db.sql, { project: 'shop', name: 'web' }, 'ann', { replicas: 1 }),
    ).rejects.toBeInstanceOf(ServiceConflictError);
    expect(await removeService(db.sql, s.id)).toBeNull();
    await saveReconcile(
      db.sql,
      s.id,
      step,
      [],
      { running: 0 },
      { created: [], deleted: ['web-1', 'web-2'] },
    );
    expect(await removeService(db.sql, s.id)).not.toBeNull();
    await expect(getService(db.sql, 'shop', 'web')).rejects.toBeInstanceOf(ServiceNotFoundError);
  });

  it('queues, when migrated, the tokens an earlier version kept half-retired', async () => {
    const old = await createTestDatabase();
    const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-services-003-'));
    try {
      const all = fileURLToPath(new URL('../../services/migrations/', import.meta.url));
      for (const f of (await readdir(all)).filter((f) => f < '004')) {
        await copyFile(path.join(all, f), path.join(dir, f));
      }
      const set = {
        table: 'services.schema_migrations',
        lockId: 1,
        prelude: 'CREATE SCHEMA IF NOT EXISTS services',
      };
      expect(await applyMigrations(old.sql, { ...set, dir })).toHaveLength(3);
      // As that version recorded them: its own columns, written as it wrote them.
      const [made] = await old.sql<{ id: string }[]>`
        INSERT INTO services.services (project, name, template, revision, replicas,
          max_unavailable, max_surge, every_seconds, unknown_grace_seconds, unhealthy_after,
          created_by, token, token_id)
        VALUES ('shop', 'old', ${old.sql.json(spec.template)}, 'r1', 2, 0, 1, 30, 120, 3,
          'ann', 'own', 'own-id')
        RETURNING id`;
      await old.sql`
        INSERT INTO services.cloud_tokens (service_id, cloud, project, token, token_id)
        VALUES (${made!.id}, 'east', 'p', 'east-secret', 'east-id'),
               (${made!.id}, 'west', 'p', 'west-secret', 'west-id')`;
      await old.sql`UPDATE services.cloud_tokens SET retiring = true WHERE cloud = 'east'`;
      expect(await migrateServices(old.sql)).toEqual(['004_revocations.sql', '005_token_urls.sql']);
      expect(
        await old.sql`SELECT cloud, token, token_id, service, attempts FROM services.revocations`,
      ).toEqual([
        {
          cloud: 'east',
          token: 'east-secret',
          token_id: 'east-id',
          service: 'shop/old',
          attempts: 0,
        },
      ]);
      expect(
        await old.sql`SELECT cloud FROM services.cloud_tokens WHERE service_id = ${made!.id}`,
      ).toEqual([{ cloud: 'west' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await old.drop();
    }
  });
});
