import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUD_API } from '../../cloud/api/rest.ts';
import { cloudRouter } from '../../cloud/api/router.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { serverErrorsOnRaw, type Kind } from '../support/fuzz.ts';
import { fuzzCallers, fuzzRest, fuzzTrpc } from '../support/fuzz-run.ts';
import { routesOf } from '../support/rest-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

// Every procedure of the cloud's API, over HTTP as any client calls it, with inputs made from
// valid examples and then broken, as the admin and as a project member: no answer may be a
// 500, no refusal may take 2 s, and the cloud must still answer its admin afterwards.
// VAGOTH_FUZZ_SEED=<seed> npx vitest run test/integration/cloud-fuzz.test.ts replays a run.
const SEED = Number(process.env.VAGOTH_FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS_PER_PROCEDURE = 60;

const procedures = cloudRouter._def.procedures as unknown as Record<
  string,
  { _def: { type: Kind } }
>;

const project = fc.constantFrom('fz-p1', 'fz-p2', 'fz-none');
const user = fc.constantFrom('fz-u1', 'fz-u2', 'admin', 'fz-none');
const cluster = fc.constantFrom('local', 'fz-c1', 'fz-none');
const instance = fc.constantFrom('fz-i1', 'fz-i2');
const byInstance = fc.record({ project, name: instance });

const VALID: Record<string, fc.Arbitrary<unknown>> = {
  'clusters.register': fc.oneof(
    fc.record({ name: cluster, driver: fc.constant('local') }),
    fc.record({
      name: cluster,
      driver: fc.constant('vagoth'),
      url: fc.constantFrom('http://127.0.0.1:9/trpc', 'http://127.0.0.2:9/x'),
      token: fc.constant(`vgt_${'a'.repeat(43)}`),
      region: fc.constantFrom('default', 'east'),
    }),
  ),
  'clusters.list': fc.constant(undefined),
  'clusters.get': cluster.map((name) => ({ name })),
  'clusters.drain': fc.record({ name: cluster, draining: fc.boolean() }),
  'clusters.remove': fc.constantFrom('fz-c1', 'fz-none').map((name) => ({ name })),
  'users.create': fc.record({ name: user, admin: fc.boolean() }),
  'users.list': fc.constant(undefined),
  'users.get': user.map((u) => ({ user: u })),
  'users.me': fc.constant(undefined),
  'users.disable': fc.constantFrom('fz-u2', 'fz-none').map((u) => ({ user: u })),
  'projects.create': project.map((p) => ({ project: p })),
  'projects.list': fc.constant(undefined),
  'projects.get': project.map((p) => ({ project: p })),
  'projects.delete': fc.constantFrom('fz-p2', 'fz-none').map((p) => ({ project: p })),
  'projects.addMember': fc.record({
    project,
    user,
    role: fc.constantFrom('member', 'reader'),
  }),
  'projects.removeMember': fc.record({ project, user }),
  'projects.events': fc.record({
    project,
    limit: fc.integer({ min: 1, max: 50 }),
    before: fc.constantFrom(undefined, '1', '999999'),
  }),
  'tokens.create': fc.record({
    name: fc.constantFrom('fz-t1', 'fz-t2'),
    user: fc.constantFrom(undefined, 'fz-u1'),
    project: fc.constantFrom(undefined, 'fz-p1'),
    readOnly: fc.boolean(),
    expiresInSeconds: fc.integer({ min: 1, max: 86_400 }),
  }),
  'tokens.list': fc.record({ user: fc.constantFrom(undefined, 'fz-u1') }),
  // Never the fuzz's own tokens: it would lock itself out.
  'tokens.revoke': fc.uuid().map((id) => ({ id })),
  'instances.create': fc.record({
    project,
    name: instance,
    cluster: fc.constantFrom(undefined, 'local'),
    vcpus: fc.constantFrom(1, 2),
    memoryMiB: fc.constantFrom(64, 128),
    image: fc.constantFrom('fz-img', 'none'),
    nics: fc.constantFrom([], [{ network: 'default' }]),
    placement: fc.constantFrom(
      undefined,
      { antiAffinity: ['web'] },
      { excludeClusters: ['far'] },
      { policy: 'pack', tags: { rack: 'a' }, antiAffinity: ['a', 'b'], excludeClusters: ['local'] },
    ),
  }),
  'instances.get': byInstance,
  'instances.list': fc.record({
    project,
    limit: fc.integer({ min: 1, max: 100 }),
    prefix: fc.constantFrom(undefined, 'fz', 'fz-i', 'web-'),
  }),
  'instances.start': byInstance,
  'instances.stop': byInstance,
  'instances.shutdown': byInstance,
  'instances.reboot': byInstance,
  'instances.reprovision': byInstance,
  'instances.delete': byInstance,
  'instances.operations': fc.record({
    project,
    name: instance,
    limit: fc.integer({ min: 1, max: 50 }),
  }),
  'instances.operation': fc.record({
    project,
    name: instance,
    id: fc.constantFrom('vm:fz-p1.fz-i1', 'host:x:register'),
    runId: fc.constantFrom(undefined, 'r'),
  }),
  'quotas.set': fc.record({ project, instances: fc.constantFrom(null, 0, 5) }),
  'quotas.get': project.map((p) => ({ project: p })),
  'networks.grant': fc.record({ cluster, network: fc.constant('default'), project }),
  'networks.revoke': fc.record({ cluster, network: fc.constant('default'), project }),
  'networks.list': project.map((p) => ({ project: p })),
  'images.publish': fc.record({ cluster, image: fc.constant('fz-img') }),
  'images.unpublish': fc.record({
    cluster,
    image: fc.constant('fz-img'),
    project: fc.constantFrom(undefined, 'fz-p1'),
  }),
  'images.list': project.map((p) => ({ project: p })),
  'events.list': fc.record({
    limit: fc.integer({ min: 1, max: 50 }),
    before: fc.constantFrom(undefined, '1', '999999'),
    action: fc.constantFrom(undefined, 'clusters.register', 'instances.lost'),
  }),
};

let h: Harness;
const tokens: string[] = [];
const fuzz = { valid: VALID, tokens, seed: SEED, tolerated: [502] };

beforeAll(async () => {
  h = await startHarness({ cloud: { clusterUrls: ['http://127.0.0.1:9/trpc'] } });
  const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  tokens.push(...(await fuzzCallers(admin, h.cloud!.adminToken)));
});
afterAll(async () => {
  await h?.close();
});

describe(`every cloud procedure, fuzzed over HTTP (seed ${SEED})`, () => {
  it('has a generator for every procedure of the router, and none for one it lacks', () => {
    expect(Object.keys(VALID).sort()).toEqual(Object.keys(procedures).sort());
  });

  it('refuses what is not JSON with a 4xx, never a 500', async () => {
    expect(await serverErrorsOnRaw(h.cloud!.url, tokens[0]!, procedures)).toEqual([]);
  });

  it('answers every input from the admin and a member with no 500, refusals within 2 s', async () => {
    // 502 is the cloud's answer that a cluster it was told of does not answer (nothing
    // listens at 127.0.0.1:9): the one 5xx that is not the cloud's own fault.
    const run = await fuzzTrpc(h.cloud!.url, procedures, { ...fuzz, runs: RUNS_PER_PROCEDURE });
    console.log(`cloud fuzz seed ${SEED}: ${run.calls} calls`, run.statuses);
    expect(run.problems, `seed ${SEED}`).toEqual([]);
    // The cloud still answers its admin, and its local cluster is still there.
    const admin = cloudClient(h.cloud!.url, tokens[0]);
    expect((await admin.users.me.query()).name).toBe('admin');
    expect((await admin.clusters.list.query()).map((c) => c.name)).toContain('local');
  }, 240_000);
  it('answers every REST route the same way: no 500, refusals within 2 s', async () => {
    const doc = CLOUD_API.openApi();
    expect(new Set(routesOf(doc).map((r) => r.procedure))).toEqual(
      new Set(Object.keys(procedures)),
    );
    const run = await fuzzRest(new URL(h.cloud!.url).origin, doc, { ...fuzz, runs: 20 });
    console.log(`cloud REST fuzz seed ${SEED}: ${run.calls} calls`, run.statuses);
    expect(run.problems, `seed ${SEED}`).toEqual([]);
    const admin = cloudClient(h.cloud!.url, tokens[0]);
    expect((await admin.users.me.query()).name).toBe('admin');
  }, 240_000);
});
