import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudOpenApiDocument } from '../../cloud/api/rest.ts';
import { cloudRouter } from '../../cloud/api/router.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { callOverHttp, mutated, pool, serverErrorsOnRaw, type Kind } from '../support/fuzz.ts';
import { startHarness, type Harness } from '../support/harness.ts';

// Every procedure of the cloud's API, over HTTP as any client calls it, with inputs made from
// valid examples and then broken, as the admin and as a project member: no answer may be a
// 500, no refusal may take 2 s, and the cloud must still answer its admin afterwards.
// VAGOTH_FUZZ_SEED=<seed> npx vitest run test/integration/cloud-fuzz.test.ts replays a run.
const SEED = Number(process.env.VAGOTH_FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS_PER_PROCEDURE = 60;
const REFUSED_WITHIN_MS = 2000;
const DONE_WITHIN_MS = 10_000;

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

/** A segment as a client would send it; a lone surrogate cannot be: the junk goes instead. */
function encoded(text: string, otherwise: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return otherwise;
  }
}

let h: Harness;
const tokens: string[] = [];

beforeAll(async () => {
  h = await startHarness({ cloud: { clusterUrls: ['http://127.0.0.1:9/trpc'] } });
  const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  await admin.projects.create.mutate({ project: 'fz-p1' });
  await admin.users.create.mutate({ name: 'fz-u1' });
  await admin.projects.addMember.mutate({ project: 'fz-p1', user: 'fz-u1', role: 'member' });
  tokens.push(h.cloud!.adminToken);
  tokens.push((await admin.tokens.create.mutate({ name: 'fz', user: 'fz-u1' })).token);
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
    const calls = Object.keys(procedures).flatMap((path, i) =>
      fc
        .sample(mutated(VALID[path]!), { seed: SEED + i, numRuns: RUNS_PER_PROCEDURE })
        .map((input, j) => ({ path, input, token: tokens[j % tokens.length]! })),
    );
    const order = fc.sample(fc.shuffledSubarray(calls, { minLength: calls.length }), {
      seed: SEED,
      numRuns: 1,
    })[0]!;
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    await pool(order, 4, async ({ path, input, token }) => {
      const shown = (JSON.stringify(input) ?? 'undefined').slice(0, 200);
      try {
        const { status, ms, body } = await callOverHttp(
          h.cloud!.url,
          token,
          path,
          input,
          procedures[path]!._def.type,
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        // 502 is the cloud's answer that a cluster it was told of does not answer (nothing
        // listens at 127.0.0.1:9): the one 5xx that is not the cloud's own fault.
        const fault = status >= 500 && status !== 502;
        if (fault || ms > (status < 400 ? DONE_WITHIN_MS : REFUSED_WITHIN_MS)) {
          problems.push(
            `${path} ${shown}: ${status} in ${Math.round(ms)} ms ${body.slice(0, 200)}`,
          );
        }
      } catch (err) {
        problems.push(`${path} ${shown}: ${String(err)}`);
      }
    });
    console.log(`cloud fuzz seed ${SEED}: ${order.length} calls`, Object.fromEntries(statuses));
    expect(problems, `seed ${SEED}`).toEqual([]);
    // The cloud still answers its admin, and its local cluster is still there.
    const admin = cloudClient(h.cloud!.url, tokens[0]);
    expect((await admin.users.me.query()).name).toBe('admin');
    expect((await admin.clusters.list.query()).map((c) => c.name)).toContain('local');
  }, 240_000);
  it('answers every REST route the same way: no 500, refusals within 2 s', async () => {
    const origin = new URL(h.cloud!.url).origin;
    const doc = cloudOpenApiDocument();
    const routes = Object.entries(doc.paths ?? {}).flatMap(([route, methods]) =>
      Object.entries(methods as Record<string, { operationId: string }>).map(([m, op]) => ({
        route,
        method: m.toUpperCase(),
        path: op.operationId.replace('-', '.'),
      })),
    );
    expect(new Set(routes.map((r) => r.path))).toEqual(new Set(Object.keys(procedures)));
    // Path segments a hostile client might send instead of a name.
    const junk = fc.constantFrom(
      '..',
      '%2e%2e',
      '%2F',
      '%00',
      '%E0%A4%A',
      'a'.repeat(5000),
      '%F0%9F%92%A9',
      '__proto__',
      'constructor',
      ' ',
    );
    const calls = routes.flatMap((r, i) =>
      fc
        .sample(fc.tuple(mutated(VALID[r.path]!), junk, fc.boolean()), {
          seed: SEED + 1000 + i,
          numRuns: 20,
        })
        .map(([input, bad, useJunk], j) => ({ ...r, input, bad, useJunk, token: tokens[j % 2]! })),
    );
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    await pool(calls, 4, async ({ route, method, input, bad, useJunk, token }) => {
      const fields = { ...(input !== null && typeof input === 'object' ? input : {}) } as Record<
        string,
        unknown
      >;
      const url = new URL(
        `${origin}/cloud/api${route.replace(/\{(\w+)\}/g, (_, f: string) => {
          const v = fields[f];
          delete fields[f];
          return useJunk || (typeof v !== 'string' && typeof v !== 'number')
            ? bad
            : encoded(String(v), bad);
        })}`,
      );
      const body = method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(fields);
      if (body === undefined) {
        for (const [k, v] of Object.entries(fields)) {
          url.searchParams.append(k, typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
        }
      }
      const started = performance.now();
      try {
        const res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body }),
        });
        const text = await res.text();
        const ms = performance.now() - started;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const fault = res.status >= 500 && res.status !== 502;
        if (fault || ms > (res.status < 400 ? DONE_WITHIN_MS : REFUSED_WITHIN_MS)) {
          problems.push(
            `${method} ${url.pathname.slice(0, 200)}: ${res.status} ${text.slice(0, 200)}`,
          );
        }
        // 431 is Node's own, before vagoth's: a URL past its 16 KiB of headers.
        if (
          res.status >= 400 &&
          res.status !== 431 &&
          !/^application\/json/.test(res.headers.get('content-type') ?? '')
        ) {
          problems.push(`${method} ${url.pathname.slice(0, 200)}: ${res.status} not JSON`);
        }
      } catch (err) {
        problems.push(`${method} ${url.pathname.slice(0, 200)}: ${String(err)}`);
      }
    });
    console.log(
      `cloud REST fuzz seed ${SEED}: ${calls.length} calls`,
      Object.fromEntries(statuses),
    );
    expect(problems, `seed ${SEED}`).toEqual([]);
    const admin = cloudClient(h.cloud!.url, tokens[0]);
    expect((await admin.users.me.query()).name).toBe('admin');
  }, 240_000);
});
