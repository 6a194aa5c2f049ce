import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServices } from '../../services/migrate.ts';
import {
  createService,
  getService,
  listServices,
  markDeleting,
  membersOf,
  removeService,
  saveReconcile,
  serviceEvents,
  ServiceConflictError,
  ServiceNotFoundError,
  updateService,
  type ServiceSpecInput,
} from '../../services/store.ts';
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
    unknownGraceSeconds: 120,
    health: { tcp: 80 },
    unhealthyAfter: 3,
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    expect(await migrateServices(db.sql)).toEqual(['001_services.sql']);
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
      }),
    ).rejects.toBeInstanceOf(ServiceConflictError);
    await createService(db.sql, {
      ...spec,
      project: 'other',
      name: 'web',
      createdBy: 'bob',
      token: 'vgc_x',
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
      }),
    ).rejects.toThrow();
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

  it('replaces its members and status in one go, and goes only once it has none', async () => {
    const s = await getService(db.sql, 'shop', 'web');
    const at = new Date('2026-12-06T12:00:00Z');
    const members = [0, 1, 2].map((index) => ({
      name: `web-${index}`,
      index,
      revision: s.revision,
      createdAt: at,
    }));
    await saveReconcile(
      db.sql,
      s.id,
      members,
      { running: 3 },
      { created: ['web-0', 'web-1', 'web-2'], deleted: [] },
    );
    expect(await membersOf(db.sql, s.id)).toEqual(members);
    await saveReconcile(
      db.sql,
      s.id,
      members.slice(1),
      { running: 2 },
      { created: [], deleted: ['web-0'] },
    );
    expect((await membersOf(db.sql, s.id)).map((m) => m.name)).toEqual(['web-1', 'web-2']);
    expect((await getService(db.sql, 'shop', 'web')).status).toEqual({ running: 2 });

    // Not while it is not being deleted, nor while it has instances.
    expect(await removeService(db.sql, s.id)).toBe(false);
    await markDeleting(db.sql, s.id, 'ann');
    await expect(
      updateService(db.sql, { project: 'shop', name: 'web' }, 'ann', { replicas: 1 }),
    ).rejects.toBeInstanceOf(ServiceConflictError);
    expect(await removeService(db.sql, s.id)).toBe(false);
    await saveReconcile(
      db.sql,
      s.id,
      [],
      { running: 0 },
      { created: [], deleted: ['web-1', 'web-2'] },
    );
    expect(await removeService(db.sql, s.id)).toBe(true);
    await expect(getService(db.sql, 'shop', 'web')).rejects.toBeInstanceOf(ServiceNotFoundError);
  });
});
