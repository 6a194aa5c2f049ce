import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { vagothErrorData } from '../../api/errors.ts';
import { withActor } from '../../registry/context.ts';
import { connect } from '../../registry/db.ts';
import { listEvents } from '../../registry/events.ts';
import { mergeMetadata } from '../../registry/node-data.ts';
import { createNode } from '../../registry/nodes.ts';
import type { NodeEvent } from '../../registry/types.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function allEvents(id: string): Promise<NodeEvent[]> {
  return (await h.api.nodes.events({ id, limit: 500 })).items;
}

async function holderOf(key: string): Promise<string | null> {
  const rows = await h.sql<{ name: string }[]>`
    SELECT n.name FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE k.key = ${key}`;
  return rows[0]?.name ?? null;
}

describe('identity', () => {
  it('a rename keeps the id, the keys and the history', async () => {
    const created = await h.api.nodes.create({
      name: 'sw-1',
      type: 'switch',
      keys: ['port:sw1/1'],
    });
    const renamed = await h.api.nodes.rename({ id: created.id, newName: 'sw-core' });
    expect(renamed).toMatchObject({ id: created.id, name: 'sw-core', keys: ['port:sw1/1'] });
    expect(await h.api.nodes.get({ name: 'sw-core' })).toMatchObject({ id: created.id });
    expect(await refusal(h.api.nodes.get({ name: 'sw-1' }))).toMatchObject({ code: 'NOT_FOUND' });
    const events = await allEvents(created.id);
    expect(events.map((e) => e.action)).toEqual(['rename', 'claim', 'create']);
    expect(events[0]).toMatchObject({
      nodeName: 'sw-core',
      changes: { name: { before: 'sw-1', after: 'sw-core' } },
    });
    expect(Object.keys(events[0]!.changes)).toEqual(['name']);
  });

  it('a rename to a taken name is a CONFLICT naming the holder', async () => {
    await h.api.nodes.create({ name: 'sw-2', type: 'switch' });
    const err = await refusal(h.api.nodes.rename({ name: 'sw-2', newName: 'sw-core' }));
    expect(err.code).toBe('CONFLICT');
    expect(vagothErrorData(err)).toEqual({
      type: 'KeyConflict',
      details: { key: 'name:sw-core', holder: 'switch sw-core' },
    });
    expect((await h.api.nodes.get({ name: 'sw-2' })).name).toBe('sw-2');
  });
});

describe('a parent', () => {
  it('cannot be overwritten, only cleared then set', async () => {
    await h.api.nodes.create({ name: 'rack-a', type: 'rack' });
    await h.api.nodes.create({ name: 'rack-b', type: 'rack' });
    await h.api.nodes.create({ name: 'srv-1', type: 'server', parent: { name: 'rack-a' } });

    const err = await refusal(h.api.nodes.setParent({ name: 'srv-1', parent: { name: 'rack-b' } }));
    expect(err.code).toBe('CONFLICT');
    expect(vagothErrorData(err)?.type).toBe('ParentAlreadySet');
    expect(err.message).toContain('rack rack-a');
    expect((await h.api.nodes.get({ name: 'srv-1' })).parent?.name).toBe('rack-a');

    // The same parent again is a retry, not an overwrite.
    await h.api.nodes.setParent({ name: 'srv-1', parent: { name: 'rack-a' } });
    expect((await h.api.nodes.clearParent({ name: 'srv-1' })).parent).toBeNull();
    const moved = await h.api.nodes.setParent({ name: 'srv-1', parent: { name: 'rack-b' } });
    expect(moved.parent).toMatchObject({ name: 'rack-b', type: 'rack' });
  });

  it('cannot make a node its own ancestor', async () => {
    await h.api.nodes.create({ name: 'row-1', type: 'row' });
    await h.api.nodes.setParent({ name: 'rack-b', parent: { name: 'row-1' } });
    for (const [node, parent] of [
      ['row-1', 'srv-1'],
      ['row-1', 'row-1'],
    ] as const) {
      const err = await refusal(h.api.nodes.setParent({ name: node, parent: { name: parent } }));
      expect(vagothErrorData(err)?.type).toBe('ParentCycle');
      expect(err.code).toBe('CONFLICT');
    }
    expect((await h.api.nodes.get({ name: 'row-1' })).parent).toBeNull();
  });
});

describe('a definition', () => {
  const definition = { size: 10 };
  it.each(['placing', 'defining', 'starting', 'running', 'decommissioning'])(
    'cannot change while the node is %s',
    async (state) => {
      const name = `def-${state}`;
      await h.api.nodes.create({ name, type: 'volume', definition, metadata: { state } });
      const err = await refusal(h.api.nodes.updateDefinition({ name, definition: { size: 20 } }));
      expect(err.code).toBe('PRECONDITION_FAILED');
      expect(err.message).toBe(`volume ${name} is ${state}; cannot change its definition`);
      expect((await h.api.nodes.get({ name })).definition).toEqual(definition);
    },
  );

  it.each(['pending', 'failed', null])('can change while its state is %s', async (state) => {
    const name = `def-${String(state)}`;
    await h.api.nodes.create({ name, type: 'volume', definition, metadata: { state } });
    const changed = await h.api.nodes.updateDefinition({ name, definition: { size: 20 } });
    expect(changed.definition).toEqual({ size: 20 });
  });

  it('cannot change while the node sits on a host, and can once it is detached', async () => {
    // Hosts come from hosts.register; a row is the shortest way to one here.
    await h.sql`INSERT INTO nodes (name, type) VALUES ('hv-def', 'host')`;
    await h.api.nodes.create({ name: 'vol-on-hv', type: 'volume', parent: { name: 'hv-def' } });
    const err = await refusal(
      h.api.nodes.updateDefinition({ name: 'vol-on-hv', definition: { size: 1 } }),
    );
    expect(err.code).toBe('PRECONDITION_FAILED');
    expect(err.message).toContain('deployed on host hv-def');
    await h.api.nodes.clearParent({ name: 'vol-on-hv' });
    await h.api.nodes.updateDefinition({ name: 'vol-on-hv', definition: { size: 1 } });
  });
});

describe('metadata and tags', () => {
  it('twenty concurrent writers, each setting its own key, lose none', async () => {
    const { id } = await h.api.nodes.create({ name: 'busy', type: 'switch' });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h.api.nodes.updateMetadata({ id, patch: { [`writer-${i}`]: i } }),
      ),
    );
    const expected = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`writer-${i}`, i]));
    expect((await h.api.nodes.get({ id })).metadata).toEqual(expected);
    // Each writer's event holds its own key only.
    const updates = (await allEvents(id)).filter((e) => e.action === 'update');
    expect(updates).toHaveLength(20);
    for (const e of updates) expect(Object.keys(e.changes.metadata?.after ?? {})).toHaveLength(1);
  });

  it('a key set to null is removed; other keys stay', async () => {
    const node = await h.api.nodes.create({
      name: 'meta-null',
      type: 'switch',
      metadata: { a: 1, b: { nested: null } },
    });
    const after = await h.api.nodes.updateMetadata({ id: node.id, patch: { a: null, c: 'x' } });
    expect(after.metadata).toEqual({ b: { nested: null }, c: 'x' });
  });

  it('tags merge, and null removes one', async () => {
    await h.api.nodes.create({ name: 'tagged', type: 'switch', tags: { env: 'prod', zone: 'a' } });
    const after = await h.api.nodes.updateTags({
      name: 'tagged',
      patch: { zone: null, rack: 'r1' },
    });
    expect(after.tags).toEqual({ env: 'prod', rack: 'r1' });
  });
});

describe('unique keys', () => {
  it('are claimed with the node all or nothing; the conflict names key and holder', async () => {
    await h.api.nodes.create({ name: 'keys-a', type: 'volume', keys: ['ip:10.0.0.5'] });
    const err = await refusal(
      h.api.nodes.create({ name: 'keys-b', type: 'volume', keys: ['ip:10.0.0.6', 'ip:10.0.0.5'] }),
    );
    expect(err.code).toBe('CONFLICT');
    expect(vagothErrorData(err)).toEqual({
      type: 'KeyConflict',
      details: { key: 'ip:10.0.0.5', holder: 'volume keys-a' },
    });
    expect(await refusal(h.api.nodes.get({ name: 'keys-b' }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await holderOf('ip:10.0.0.6')).toBeNull();
    expect(await holderOf('ip:10.0.0.5')).toBe('keys-a');
    const logged = await h.sql`SELECT 1 FROM node_events WHERE node_name = 'keys-b'`;
    expect(logged).toHaveLength(0);
  });

  it('change atomically: a conflicting claim leaves the releases undone too', async () => {
    await h.api.nodes.create({ name: 'keys-c', type: 'volume', keys: ['ip:10.0.1.1', 'vol:p/c'] });
    await h.api.nodes.create({ name: 'keys-d', type: 'volume', keys: ['ip:10.0.1.7'] });
    const err = await refusal(
      h.api.nodes.changeKeys({
        name: 'keys-c',
        release: ['ip:10.0.1.1'],
        claim: ['ip:10.0.1.8', 'ip:10.0.1.7'],
      }),
    );
    expect(vagothErrorData(err)?.details).toEqual({ key: 'ip:10.0.1.7', holder: 'volume keys-d' });
    expect((await h.api.nodes.get({ name: 'keys-c' })).keys).toEqual(['ip:10.0.1.1', 'vol:p/c']);
    expect(await holderOf('ip:10.0.1.8')).toBeNull();

    const changed = await h.api.nodes.changeKeys({
      name: 'keys-c',
      release: ['ip:10.0.1.1'],
      claim: ['ip:10.0.1.8'],
    });
    expect(changed.keys).toEqual(['ip:10.0.1.8', 'vol:p/c']);
    await h.api.nodes.changeKeys({ name: 'keys-d', claim: ['ip:10.0.1.1'] });
    expect(await holderOf('ip:10.0.1.1')).toBe('keys-d');
  });

  it("releasing another node's key is refused", async () => {
    const err = await refusal(h.api.nodes.changeKeys({ name: 'keys-c', release: ['ip:10.0.1.7'] }));
    expect(err.code).toBe('CONFLICT');
    expect(await holderOf('ip:10.0.1.7')).toBe('keys-d');
  });
});

describe('deleting a node', () => {
  it('is refused while it has children or a parent', async () => {
    await h.api.nodes.create({ name: 'del-parent', type: 'rack' });
    await h.api.nodes.create({
      name: 'del-child',
      type: 'server',
      parent: { name: 'del-parent' },
      keys: ['serial:del-child'],
    });
    for (const name of ['del-parent', 'del-child']) {
      const err = await refusal(h.api.nodes.delete({ name }));
      expect(err.code).toBe('PRECONDITION_FAILED');
      expect(vagothErrorData(err)?.type).toBe('NodeInUse');
    }
    expect((await refusal(h.api.nodes.delete({ name: 'del-parent' }))).message).toBe(
      'rack del-parent still has 1 child node(s); detach it first',
    );
    expect(await holderOf('serial:del-child')).toBe('del-child');

    await h.api.nodes.clearParent({ name: 'del-child' });
    await h.api.nodes.delete({ name: 'del-child' });
    await h.api.nodes.delete({ name: 'del-parent' });
    expect(await holderOf('serial:del-child')).toBeNull();
  });

  it('of type vm or host, and creating one, is refused naming the type', async () => {
    for (const type of ['vm', 'host', 'vm-migration']) {
      const created = await refusal(h.api.nodes.create({ name: 'sneaky', type }));
      expect(created.code).toBe('BAD_REQUEST');
      expect(created.cause).toBeInstanceOf(z.ZodError);
      expect((created.cause as z.ZodError).issues.map((i) => i.path)).toEqual([['type']]);
      // Past the API, the registry refuses as well.
      await expect(createNode(h.sql, { name: 'sneaky', type })).rejects.toMatchObject({
        name: 'LifecycleOwnedError',
        type,
      });
    }

    await h.sql`INSERT INTO nodes (name, type) VALUES ('hv-keep', 'host')`;
    const deleted = await refusal(h.api.nodes.delete({ name: 'hv-keep' }));
    expect(deleted.code).toBe('FORBIDDEN');
    expect(deleted.message).toMatch(/^host hv-keep is owned by its workflows \(hosts\.\*\)/);
    expect((await h.api.nodes.get({ name: 'hv-keep' })).type).toBe('host');
  });
});

describe('look-ups', () => {
  const names = Array.from({ length: 25 }, (_, i) => `disk-${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    await h.api.nodes.create({ name: 'shelf', type: 'shelf' });
    for (const [i, name] of names.entries()) {
      await h.api.nodes.create({
        name,
        type: 'disk',
        tenant: i % 2 === 0 ? 'tenant-even' : 'tenant-odd',
        tags: { tier: i % 5 === 0 ? 'fast' : 'slow' },
        keys: [`wwn:${name}`],
        ...(i < 3 ? { parent: { name: 'shelf' } } : {}),
      });
    }
  });

  it('by id, name and key find the same node', async () => {
    const byName = await h.api.nodes.get({ name: 'disk-07' });
    expect(await h.api.nodes.get({ id: byName.id })).toEqual(byName);
    expect(await h.api.nodes.get({ key: 'wwn:disk-07' })).toEqual(byName);
    expect(await refusal(h.api.nodes.get({ key: 'wwn:nowhere' }))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('by type, over pages of 10, return each node exactly once, in name order', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await h.api.nodes.list({ type: 'disk', limit: 10, cursor });
      seen.push(...page.items.map((n) => n.name));
      sizes.push(page.items.length);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(sizes).toEqual([10, 10, 5]);
    expect(seen).toEqual(names);
  });

  it.each<[string, Parameters<Harness['api']['nodes']['list']>[0], string[]]>([
    ['tenant', { tenant: 'tenant-odd' }, names.filter((_, i) => i % 2 === 1)],
    [
      'tag',
      { tag: { key: 'tier', value: 'fast' } },
      ['disk-00', 'disk-05', 'disk-10', 'disk-15', 'disk-20'],
    ],
    ['parent', { parent: { name: 'shelf' } }, ['disk-00', 'disk-01', 'disk-02']],
    ['key', { key: 'wwn:disk-13' }, ['disk-13']],
    [
      'tenant and tag',
      { tenant: 'tenant-even', tag: { key: 'tier', value: 'fast' } },
      ['disk-00', 'disk-10', 'disk-20'],
    ],
  ])('by %s', async (_what, filter, expected) => {
    const page = await h.api.nodes.list({ ...filter, limit: 500 });
    expect(page.items.map((n) => n.name)).toEqual(expected);
    expect(page.nextCursor).toBeNull();
  });

  it('refuse a cursor they did not hand out, and a limit out of bounds', async () => {
    const tampered = Buffer.from(JSON.stringify(['disk-00', 'not-a-uuid'])).toString('base64url');
    for (const cursor of ['bm90LWEtY3Vyc29y', tampered]) {
      const bad = await refusal(h.api.nodes.list({ type: 'disk', cursor }));
      expect(bad.code).toBe('BAD_REQUEST');
      expect(bad.message).toMatch(/^cursor: /);
    }
    for (const limit of [0, 501]) {
      expect(await refusal(h.api.nodes.list({ limit }))).toMatchObject({ code: 'BAD_REQUEST' });
    }
  });
});

describe('the event log', () => {
  it('records each change with actor, operation and only the fields that changed', async () => {
    const node = await h.api.nodes.create({
      name: 'logged',
      type: 'switch',
      tenant: 'acme',
      metadata: { a: 1, b: 2 },
      keys: ['port:logged/1'],
    });
    await h.api.nodes.updateMetadata({ id: node.id, patch: { b: 3, c: 4 } });
    await h.api.nodes.updateMetadata({ id: node.id, patch: {} }); // changes nothing: no event
    await h.api.nodes.changeKeys({ id: node.id, release: ['port:logged/1'], claim: ['port:x/2'] });
    await h.api.nodes.rename({ id: node.id, newName: 'logged-2' });

    const events = await allEvents(node.id);
    expect(events.map((e) => [e.action, e.actor, e.operation])).toEqual([
      ['rename', 'api', null],
      ['claim', 'api', null],
      ['release', 'api', null],
      ['update', 'api', null],
      ['claim', 'api', null],
      ['create', 'api', null],
    ]);
    const [rename, claim, release, update, , create] = events;
    expect(update!.changes).toEqual({ metadata: { before: { b: 2 }, after: { b: 3, c: 4 } } });
    expect(release!.changes).toEqual({ key: { before: 'port:logged/1', after: null } });
    expect(claim!.changes).toEqual({ key: { before: null, after: 'port:x/2' } });
    expect(rename!.changes).toEqual({ name: { before: 'logged', after: 'logged-2' } });
    expect(create!.changes).toEqual({
      name: { before: null, after: 'logged' },
      type: { before: null, after: 'switch' },
      tenant: { before: null, after: 'acme' },
      metadata: { before: null, after: { a: 1, b: 2 } },
    });
  });

  it('names the operation given to withActor, and no one when none is given', async () => {
    const { id } = await h.api.nodes.create({ name: 'worked', type: 'switch' });
    const operation = 'vm:web-1:create/5f1d2c3e-0000-4000-8000-000000000001';
    await withActor(h.sql, { actor: 'worker', operation }, (tx) =>
      mergeMetadata(tx, id, { state: 'running' }),
    );
    // On the same session afterwards (a pool of one), the settings are gone with the transaction.
    const session = connect(h.databaseUrl, { max: 1 });
    try {
      await withActor(session, { actor: 'worker', operation }, (tx) =>
        mergeMetadata(tx, id, { step: 1 }),
      );
      await mergeMetadata(session, id, { step: 2 });
    } finally {
      await session.end();
    }
    // Nothing bypasses the log: not even SQL outside the registry.
    await h.sql`UPDATE nodes SET tags = '{"by": "hand"}' WHERE id = ${id}`;

    const [byHand, plain, sameSession, worker] = await allEvents(id);
    expect(worker).toMatchObject({ actor: 'worker', operation, action: 'update' });
    expect(sameSession).toMatchObject({ actor: 'worker', operation });
    expect(plain).toMatchObject({ actor: null, operation: null });
    expect(byHand).toMatchObject({
      actor: null,
      changes: { tags: { before: {}, after: { by: 'hand' } } },
    });
  });

  it('outlives the node, and pages newest first', async () => {
    const { id } = await h.api.nodes.create({
      name: 'doomed',
      type: 'switch',
      keys: ['sn:doomed'],
    });
    for (const i of [1, 2, 3]) await h.api.nodes.updateTags({ id, patch: { round: String(i) } });
    await h.api.nodes.delete({ id });

    const first = await h.api.nodes.events({ id, limit: 4 });
    expect(first.items.map((e) => e.action)).toEqual(['delete', 'release', 'update', 'update']);
    expect(first.items[0]).toMatchObject({ nodeName: 'doomed', actor: 'api' });
    expect(first.items[0]!.changes.name).toEqual({ before: 'doomed', after: null });
    const rest = await h.api.nodes.events({ id, limit: 4, cursor: first.nextCursor ?? '' });
    expect(rest.items.map((e) => e.action)).toEqual(['update', 'claim', 'create']);
    expect(rest.nextCursor).toBeNull();
    expect((await listEvents(h.sql, id)).items).toHaveLength(7);
    // By name there is no node left to ask about; by id its history remains.
    expect(await refusal(h.api.nodes.events({ name: 'doomed' }))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('cannot be edited', async () => {
    await expect(h.sql`DELETE FROM node_events`).rejects.toThrow(/append-only/);
  });
});

describe('VMs and hosts through the generic node API', () => {
  it('take tags, but no other change outside their workflows', async () => {
    const uri = await h.simulatedHost('guarded');
    await h.api.hosts.register({ name: 'guarded', driver: 'libvirt', uri });
    await h.api.nodes.updateTags({ name: 'guarded', patch: { rack: 'r9' } });
    expect((await h.api.hosts.get({ name: 'guarded' })).tags).toEqual({ rack: 'r9' });
    for (const attempt of [
      () => h.api.nodes.rename({ name: 'guarded', newName: 'renamed' }),
      () => h.api.nodes.updateMetadata({ name: 'guarded', patch: { state: 'x' } }),
      () => h.api.nodes.changeKeys({ name: 'guarded', claim: ['ip:10.9.9.9'], release: [] }),
      () => h.api.nodes.delete({ name: 'guarded' }),
    ]) {
      await expect(attempt()).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: expect.stringMatching(/^host guarded is owned by its workflows/),
      });
    }
    expect((await h.api.hosts.get({ name: 'guarded' })).name).toBe('guarded');
  });
});
