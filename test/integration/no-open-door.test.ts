import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startHarness, type Harness } from '../support/harness.ts';

// Issue 14, "No open door": bad input gets a clear 4xx at once and nothing is stored half-way.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({ name: 'hv', driver: 'libvirt', uri: await h.simulatedHost('hv') });
  await h.api.nodes.create({ name: 'existing', type: 'thing', keys: ['x:kept'] });
});
afterAll(async () => {
  await h?.close();
});

const LONE = '\ud800';

async function refusal(call: () => Promise<unknown>): Promise<TRPCError> {
  const started = Date.now();
  const outcome = await call().then(
    () => new Error('accepted'),
    (err: unknown) => err,
  );
  expect(Date.now() - started).toBeLessThan(1000);
  expect(outcome).toBeInstanceOf(TRPCError);
  return outcome as TRPCError;
}

/** BAD_REQUEST, every issue at `path`. */
async function expectBadRequest(call: () => Promise<unknown>, path: (string | number)[]) {
  const error = await refusal(call);
  expect(error.code).toBe('BAD_REQUEST');
  expect(error.cause).toBeInstanceOf(z.ZodError);
  const issues = (error.cause as z.ZodError).issues;
  expect(issues.length).toBeGreaterThan(0);
  for (const issue of issues) expect(issue.path).toEqual(path);
}

async function nodeNames(): Promise<string[]> {
  const rows = await h.sql<{ name: string }[]>`SELECT name FROM nodes ORDER BY name`;
  return rows.map((r) => r.name);
}

async function keysOf(name: string): Promise<string[]> {
  const rows = await h.sql<{ key: string }[]>`
    SELECT k.key FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE n.name = ${name}
    ORDER BY k.key`;
  return rows.map((r) => r.key);
}

const vm = { name: 'door-1', vcpus: 1, memoryMiB: 64 };
const thousandTags = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, 'v']));

describe('a lone surrogate or too many tags: BAD_REQUEST naming the field, nothing stored', () => {
  it.each<[string, () => Promise<unknown>, (string | number)[]]>([
    ['vms.create tag', () => h.api.vms.create({ ...vm, tags: { a: LONE } }), ['tags', 'a']],
    [
      'vms.create placement tag',
      () => h.api.vms.create({ ...vm, placement: { tags: { rack: LONE } } }),
      ['placement', 'tags', 'rack'],
    ],
    ['vms.create with 1000 tags', () => h.api.vms.create({ ...vm, tags: thousandTags }), ['tags']],
    [
      'hosts.register tag',
      async () =>
        h.api.hosts.register({
          name: 'hv-bad',
          driver: 'libvirt',
          uri: await h.simulatedHost('hv-bad'),
          tags: { a: LONE },
        }),
      ['tags', 'a'],
    ],
    [
      'nodes.create metadata',
      () => h.api.nodes.create({ name: 'n-bad', type: 'thing', metadata: { a: { b: LONE } } }),
      ['metadata', 'a', 'b'],
    ],
    [
      'nodes.create key',
      () => h.api.nodes.create({ name: 'n-bad', type: 'thing', keys: [`x:${LONE}`] }),
      ['keys', 0],
    ],
    [
      'nodes.list tag',
      () => h.api.nodes.list({ tag: { key: 'a', value: LONE } }),
      ['tag', 'value'],
    ],
    [
      'nodes.updateMetadata',
      () => h.api.nodes.updateMetadata({ name: 'existing', patch: { [LONE]: 1 } }),
      ['patch', LONE],
    ],
    [
      'nodes.updateTags',
      () => h.api.nodes.updateTags({ name: 'existing', patch: { a: LONE } }),
      ['patch', 'a'],
    ],
    [
      'nodes.changeKeys',
      () => h.api.nodes.changeKeys({ name: 'existing', claim: [`x:${LONE}`], release: ['x:kept'] }),
      ['claim', 0],
    ],
  ])('%s', async (_what, call, path) => {
    await expectBadRequest(call, path);
    expect(await nodeNames()).toEqual(['existing', 'hv']);
    expect(await keysOf('existing')).toEqual(['x:kept']);
    const existing = await h.api.nodes.get({ name: 'existing' });
    expect(existing).toMatchObject({ metadata: {}, tags: {} });
  });
});

describe('tags patched a little at a time stay within the bound', () => {
  const patch = (prefix: string, n: number, value = 'v') =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value]));

  it.each<[string, Record<string, string>, Record<string, string>]>([
    ['past 64 tags', patch('a', 40), patch('b', 40)],
    ['past 16 KiB', patch('a', 32, 'x'.repeat(256)), patch('b', 32, 'y'.repeat(256))],
  ])(
    '%s: the patch that would pass it is BAD_REQUEST, and changes nothing',
    async (what, first, second) => {
      const name = `tagged-${what.length}`;
      await h.api.nodes.create({ name, type: 'thing' });
      await h.api.nodes.updateTags({ name, patch: first });
      const error = await refusal(() => h.api.nodes.updateTags({ name, patch: second }));
      expect(error.code).toBe('BAD_REQUEST');
      expect(error.message).toMatch(/^patch: /);
      expect((await h.api.nodes.get({ name })).tags).toEqual(first);
      await h.api.nodes.delete({ name });
    },
  );
});

describe('operations.get of an operation that is not there: NOT_FOUND', () => {
  it.each<[string, { id: string; updateId?: string }]>([
    ['an update of a workflow that is no VM', { id: 'host:hv:register', updateId: 'x' }],
    ['a workflow that does not exist', { id: 'vm:nobody', updateId: 'create' }],
    ['a workflow that does not exist, no update', { id: 'vm:nobody' }],
  ])('%s', async (_what, input) => {
    const error = await refusal(() => h.api.operations.get(input));
    expect(error.code).toBe('NOT_FOUND');
  });

  it('an update a VM does not know', async () => {
    const { operation } = await h.api.vms.create({ name: 'op-vm', vcpus: 1, memoryMiB: 64 });
    const error = await refusal(() =>
      h.api.operations.get({ id: operation.id, updateId: 'never-sent' }),
    );
    expect(error.code).toBe('NOT_FOUND');
  });
});

describe('the monitor polls under ids no host can take', () => {
  it('a host named all polls apart from the poll of every host', async () => {
    await h.api.hosts.register({
      name: 'all',
      driver: 'libvirt',
      uri: await h.simulatedHost('all'),
    });
    // Asked together: under one id the second would join the first and answer its report.
    const [one, every] = await Promise.all([h.api.hosts.poll({ name: 'all' }), h.api.hosts.poll()]);
    expect(one.hosts.map((x) => x.name)).toEqual(['all']);
    expect(every.hosts.map((x) => x.name).sort()).toEqual(['all', 'hv']);
    const ids = new Set<string>();
    const query = `TaskQueue = '${h.taskQueue}' AND WorkflowType = 'monitorCluster'`;
    await expect
      .poll(
        async () => {
          for await (const wf of h.temporal.workflow.list({ query })) ids.add(wf.workflowId);
          return ids.size;
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(2);
  });
});

describe('placement.explain ranks by the cluster policy', () => {
  let packed: Harness;
  beforeAll(async () => {
    packed = await startHarness({ placementPolicy: 'pack' });
    for (const [name, memoryMiB] of [
      ['roomy', 32768],
      ['snug', 8192],
    ] as const) {
      const uri = await packed.simulatedHost(name, { memoryMiB });
      await packed.api.hosts.register({ name, driver: 'libvirt', uri });
    }
  });
  afterAll(async () => {
    await packed?.close();
  });

  it('with pack configured, the fullest host first, as the allocator would', async () => {
    const plan = await packed.api.placement.explain({ vcpus: 1, memoryMiB: 512 });
    expect(plan.candidates).toEqual(['snug', 'roomy']);
    expect(plan.host).toBe('snug');
  });

  it('a request naming spread is ranked by spread', async () => {
    const plan = await packed.api.placement.explain({
      vcpus: 1,
      memoryMiB: 512,
      placement: { policy: 'spread' },
    });
    expect(plan.candidates).toEqual(['roomy', 'snug']);
  });
});
