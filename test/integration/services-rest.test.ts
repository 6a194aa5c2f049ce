import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesRouter } from '../../services/api/router.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { documentProblems, openWithoutToken, restCall } from '../support/rest-client.ts';
import { servicesClient, servicesServer } from '../support/services-server.ts';

/**
 * The service layer's REST API, driven by nothing but HTTP and JSON (fetch), the way a client
 * in any language would from the OpenAPI document: the document validates, every procedure has
 * its route, and a service is created, read, scaled and deleted through the routes alone.
 */
describe('the service layer’s REST API', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  let server: Awaited<ReturnType<typeof servicesServer>>;
  let token: string;

  const call = (method: string, route: string, who: string | undefined, body?: unknown) =>
    restCall(`${server.restUrl}${route}`, method, who, body);
  const ok = async (method: string, route: string, body?: unknown) => {
    const r = await call(method, route, token, body);
    expect(r.status, `${method} ${route}: ${JSON.stringify(r.body)}`).toBe(200);
    return r.body;
  };
  /** What the service's last reconcile saw running, as its route answers. */
  const running = async () => {
    const web = await ok('GET', '/projects/shop/services/web');
    return (web.status as { running?: number }).running;
  };

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-rest-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'rest-host', { cpus: 32, memoryMiB: 32768 });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    token = await shopWithMember(admin, 'ann');
    server = await servicesServer(h, { worker: true });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await h?.close();
    await image?.remove();
  });

  it('publishes an OpenAPI 3.1 document that validates and routes every procedure', async () => {
    const { operations, problems } = await documentProblems(
      server.documentUrl,
      '/services/api',
      Object.keys(servicesRouter._def.procedures),
    );
    expect(problems).toEqual([]);
    // What a template holds that no caller is shown is in no answer the document describes.
    const answers = JSON.stringify(operations.map((o) => o.responses));
    expect(answers).toMatch(/"sshAuthorizedKeys":\{"type":"integer"/);
    expect(answers).not.toMatch(/"sshAuthorizedKeys":\{"type":"array"|"token":/);
  });

  it('refuses every route without a token, before reading its input', async () => {
    const { doc } = await documentProblems(server.documentUrl, '/services/api', []);
    expect(await openWithoutToken(server.restUrl, doc)).toEqual([]);
  });

  it('creates, reads, scales and deletes a service through the REST routes alone', async () => {
    const secret = 'hunter2-ssh-ed25519';
    const created = await ok('POST', '/projects/shop/services', {
      name: 'web',
      template: {
        vcpus: 1,
        memoryMiB: 64,
        image: 'base',
        nics: [{ network: 'default' }],
        userData: `#cloud-config\npassword: ${secret}\n`,
        sshAuthorizedKeys: [`ssh-ed25519 AAAA ${secret}`],
      },
      replicas: 2,
      everySeconds: 5,
    });
    expect(created).toMatchObject({
      project: 'shop',
      name: 'web',
      replicas: 2,
      createdBy: 'ann',
      template: { userData: '(set)', sshAuthorizedKeys: 1 },
      schedule: { id: 'service:shop/web', paused: false },
    });
    expect(created).not.toHaveProperty('token');
    // Times travel as ISO 8601 text, as the document says.
    const createdAt = created.createdAt as string;
    expect(new Date(createdAt).toISOString()).toBe(createdAt);
    await until('2 running', async () => (await running()) === 2);

    const read = await ok('GET', '/projects/shop/services/web');
    expect((read.members as unknown[]).length).toBe(2);
    const listed = await ok('GET', '/projects/shop/services');
    const events = await ok('GET', '/projects/shop/services/web/events?limit=10');
    for (const answer of [created, read, listed, events]) {
      expect(JSON.stringify(answer)).not.toContain(secret);
    }

    expect(await ok('PATCH', '/projects/shop/services/web', { replicas: 3 })).toMatchObject({
      replicas: 3,
    });
    await until('3 running', async () => (await running()) === 3);
    expect(await ok('POST', '/projects/shop/services/web/pause', {})).toMatchObject({
      paused: true,
    });
    expect(await ok('POST', '/projects/shop/services/web/resume', {})).toMatchObject({
      paused: false,
    });

    expect(await ok('DELETE', '/projects/shop/services/web')).toEqual({
      project: 'shop',
      name: 'web',
      deleting: true,
    });
    await until(
      'the service gone',
      async () => (await call('GET', '/projects/shop/services/web', token)).status === 404,
    );
    // Its instances went with it, and gave their share of the project's quota back.
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
    expect(await ok('GET', '/projects/shop/services')).toEqual([]);
  }, 120_000);

  it('answers bad input with a 4xx naming the field, and takes no text for a number', async () => {
    const web = {
      name: 'bad',
      template: { vcpus: 1, memoryMiB: 64, image: 'base' },
      replicas: 1,
    };
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/projects/shop/services', { ...web, replicas: '1' }, 400, /replicas/],
      ['POST', '/projects/shop/services', { ...web, template: { vcpus: 0 } }, 400, /template/],
      ['POST', '/projects/shop/services', { ...web, name: 'Bad' }, 400, /name/],
      ['POST', '/projects/shop/services', '{"name":', 400, /not JSON/],
      ['POST', '/projects/NOPE/services', web, 400, /project/],
      ['PATCH', '/projects/shop/services/bad', { replicas: -1 }, 400, /replicas/],
      ['GET', '/projects/shop/services/bad/events?limit=abc', undefined, 400, /limit/],
      ['GET', '/projects/shop/services/bad/events?limit=1&limit=2', undefined, 400, /limit/],
      ['GET', '/projects/shop/services/%E0%A4%A', undefined, 400, /name/],
      ['GET', '/projects/shop/services/none', undefined, 404, /service "shop\/none" not found/],
      ['GET', '/projects/other/services', undefined, 404, /project "other" not found/],
      ['GET', '/no/such/route', undefined, 404, /no route/],
      ['PUT', '/projects/shop/services', {}, 405, /allowed: GET, POST/],
    ];
    for (const [method, route, body, status, says] of cases) {
      const r = await call(method, route, token, body);
      expect(r.status, `${method} ${route} ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body.message, `${method} ${route}`).toMatch(says);
    }
    // Nothing half-made: no service `bad`, and no token minted for it.
    expect((await call('GET', '/projects/shop/services/bad', token)).status).toBe(404);
    const minted = await admin.tokens.list.query({ user: 'ann' });
    expect(minted.filter((t) => t.name === 'service-bad')).toEqual([]);
    // And the tRPC API, whose schemas REST shares, takes no text for a number either.
    const trpc = servicesClient(server.trpcUrl, token);
    await expect(
      trpc.services.create.mutate({ ...web, project: 'shop', replicas: '1' as unknown as number }),
    ).rejects.toThrow(/replicas/);
  });
});
