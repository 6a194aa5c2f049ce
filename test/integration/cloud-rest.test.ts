import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudRouter } from '../../cloud/api/router.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { smallImage } from '../support/cloud-cluster.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { documentProblems, openWithoutToken } from '../support/rest-client.ts';

interface Answer {
  status: number;
  body: Record<string, unknown> & { code?: string; message?: string };
}

/**
 * The cloud's REST API, driven by nothing but HTTP and JSON (fetch), the way a client in any
 * language would from the OpenAPI document: the document validates, every procedure has its
 * route, and an instance is created, listed and deleted through the routes alone.
 */
describe('the cloud’s REST API', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let origin: string;
  let admin: string;

  async function call(
    method: string,
    route: string,
    token: string | undefined,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const res = await fetch(`${origin}/cloud/api${route}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  }

  beforeAll(async () => {
    image = await smallImage('vagoth-cloud-rest-');
    h = await startHarness({ cloud: {}, images: image.images() });
    origin = new URL(h.cloud!.url).origin;
    admin = h.cloud!.adminToken;
    await image.addHostWithImage(h, 'rest-host', { cpus: 16, memoryMiB: 16384 });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await image?.remove();
  });

  it('publishes an OpenAPI 3.1 document that validates and routes every procedure', async () => {
    // Every procedure of the router, and nothing else, each behind the bearer token.
    const { problems } = await documentProblems(
      `${origin}/cloud/openapi.json`,
      '/cloud/api',
      Object.keys(cloudRouter._def.procedures),
    );
    expect(problems).toEqual([]);
  });

  it('refuses every route without a token, before reading its input', async () => {
    const { doc } = await documentProblems(`${origin}/cloud/openapi.json`, '/cloud/api', []);
    expect(await openWithoutToken(`${origin}/cloud/api`, doc)).toEqual([]);
  });

  it('creates, lists and deletes an instance through the REST routes alone', async () => {
    const ok = async (method: string, route: string, token: string, body?: unknown) => {
      const r = await call(method, route, token, body);
      expect(r.status, `${method} ${route}: ${JSON.stringify(r.body)}`).toBe(200);
      return r.body;
    };
    type Op = { id: string; runId: string; updateId?: string };
    /** Follows app-1's operation until it ends: its last status. */
    const ended = async (op: Op) => {
      const query = new URLSearchParams({
        runId: op.runId,
        ...(op.updateId ? { updateId: op.updateId } : {}),
      });
      const route = `/projects/web/instances/app-1/operations/${encodeURIComponent(op.id)}?${query}`;
      for (let i = 0; i < 300; i++) {
        const { status } = await ok('GET', route, token);
        if (status !== 'running' && status !== 'queued') return status;
        await new Promise((r) => setTimeout(r, 100));
      }
      return 'never ended';
    };
    await ok('POST', '/projects', admin, { project: 'web' });
    await ok('POST', '/users', admin, { name: 'wes' });
    await ok('POST', '/projects/web/members', admin, { user: 'wes', role: 'member' });
    const { token } = (await ok('POST', '/tokens', admin, { name: 'wes', user: 'wes' })) as {
      token: string;
    };
    await ok('POST', '/clusters/local/images/base/grants', admin, { project: 'web' });
    await ok('POST', '/clusters/local/networks/default/grants', admin, {});
    expect(await ok('PATCH', '/projects/web/quota', admin, { instances: 2 })).toMatchObject({
      quota: { instances: 2, vcpus: null },
    });

    const created = (await ok('POST', '/projects/web/instances', token, {
      name: 'app-1',
      vcpus: 1,
      memoryMiB: 64,
      image: 'base',
      diskGiB: 1,
      nics: [{ network: 'default' }],
    })) as {
      instance: { name: string; cluster: string };
      operation: Op;
    };
    expect(created.instance).toMatchObject({ name: 'app-1', cluster: 'local' });
    expect(await ended(created.operation)).toBe('completed');

    const listed = (await ok('GET', '/projects/web/instances?limit=10', token)) as unknown as {
      name: string;
      state: string;
      createdAt: string;
    }[];
    expect(listed.map((i) => [i.name, i.state])).toEqual([['app-1', 'running']]);
    // Times travel as ISO 8601 text, as the document says.
    expect(new Date(listed[0]!.createdAt).toISOString()).toBe(listed[0]!.createdAt);
    expect(await ok('GET', '/projects/web/quota', token)).toMatchObject({
      usage: { instances: 1, vcpus: 1, memoryMiB: 64, diskGiB: 1, ips: 1 },
    });

    const stop = await ok('POST', '/projects/web/instances/app-1/stop', token, {});
    expect(stop).toMatchObject({
      operation: { kind: expect.any(String), url: expect.any(String) },
    });
    const deleted = (await ok('DELETE', '/projects/web/instances/app-1', token)) as {
      deleted: boolean;
      operation: Op;
    };
    expect(deleted.deleted).toBe(true);
    // Its decommission can still be followed, by the instance's name, until it ends.
    expect(await ended(deleted.operation)).toBe('completed');
    expect(await ok('GET', '/projects/web/instances', token)).toEqual([]);
    expect(await ok('GET', '/projects/web/quota', token)).toMatchObject({
      usage: { instances: 0, vcpus: 0, memoryMiB: 0, diskGiB: 0, ips: 0 },
    });
  });

  it('answers bad input with a 4xx naming the field, and takes no text for a number or a flag', async () => {
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/projects/web/instances', { name: 'x', vcpus: 0 }, 400, /vcpus/],
      ['POST', '/projects/web/instances', { name: 'x', vcpus: '2', memoryMiB: 64 }, 400, /vcpus/],
      ['POST', '/users', { name: 'eve', admin: 'false' }, 400, /admin/],
      ['POST', '/projects', '{"project":', 400, /not JSON/],
      ['POST', '/projects', [1, 2], 400, /JSON object/],
      ['GET', '/projects/web/instances?limit=abc', undefined, 400, /limit/],
      ['GET', '/projects/web/instances?limit=1&limit=2', undefined, 400, /limit/],
      ['GET', '/projects/web/instances?limit=1000', undefined, 400, /limit/],
      ['GET', '/projects/NOPE/instances', undefined, 400, /project/],
      ['GET', '/projects/web/instances/%E0%A4%A', undefined, 400, /name/],
      ['GET', '/projects/nope/instances', undefined, 404, /project "nope" not found/],
      ['GET', '/no/such/route', undefined, 404, /no route/],
      ['PUT', '/projects', {}, 405, /allowed: GET, POST/],
    ];
    for (const [method, route, body, status, says] of cases) {
      const started = Date.now();
      const r = await call(method, route, admin, body);
      expect(r.status, `${method} ${route} ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body.message, `${method} ${route}`).toMatch(says);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    const bad = await call('POST', '/projects', admin, 'project=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(bad.status).toBe(415);
    // Nothing half-made: no user eve, no project x.
    expect((await call('GET', '/users/eve', admin)).status).toBe(404);
    // And the tRPC API, whose schemas REST shares, takes no text for a flag either.
    const trpc = cloudClient(h.cloud!.url, admin);
    await expect(
      trpc.users.create.mutate({ name: 'eve', admin: 'false' as unknown as boolean }),
    ).rejects.toThrow(/admin/);
  });

  it('keeps one project’s instances from another project’s member, by route as by tRPC', async () => {
    const ok = async (method: string, route: string, body?: unknown) =>
      expect((await call(method, route, admin, body)).status).toBe(200);
    await ok('POST', '/projects', { project: 'other' });
    await ok('POST', '/users', { name: 'oli' });
    await ok('POST', '/projects/other/members', { user: 'oli', role: 'member' });
    const oli = (await call('POST', '/tokens', admin, { name: 'oli', user: 'oli' })).body
      .token as string;
    const theirs = await call('GET', '/projects/web/instances', oli);
    const none = await call('GET', '/projects/nothing/instances', oli);
    expect(theirs.status).toBe(404);
    expect(theirs.body.message!.replace('web', 'X')).toBe(
      none.body.message!.replace('nothing', 'X'),
    );
    expect((await call('POST', '/clusters/local/images/base/grants', oli, {})).status).toBe(403);
  });
});
