import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { TtlCache } from '../../common/ttl-cache.ts';
import type { ServicesDeps } from '../../services/api/context.ts';
import { createServicesCaller } from '../../services/api/router.ts';
import { localCloud } from '../../services/clouds/index.ts';
import { errorCode } from '../support/api-client.ts';
import { servicesWorkerFor, shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * The service layer's API over a real cloud and Temporal: a cloud token's holder declares a
 * service in a project it may act in, and its schedule keeps it as declared.
 */
describe('the service layer’s API', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  let worker: { shutdown(): Promise<void> };
  let deps: ServicesDeps;
  const tokens: Record<'member' | 'reader' | 'other', string> = {} as never;

  const as = (token: string | undefined) =>
    createServicesCaller({ ...deps, authorization: token && `Bearer ${token}` });
  const code = (call: Promise<unknown>) =>
    call.then(
      () => 'ok',
      (err: unknown) => errorCode(err) ?? (err as { code?: string }).code ?? String(err),
    );
  const running = async () =>
    (await admin.instances.list.query({ project: 'shop', prefix: 'web-' })).filter(
      (i) => i.state === 'running',
    ).length;
  beforeAll(async () => {
    image = await smallImage('vagoth-svc-api-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'api-host', { cpus: 32, memoryMiB: 32768 });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    tokens.member = await shopWithMember(admin, 'ann');
    await admin.users.create.mutate({ name: 'rob' });
    await admin.projects.addMember.mutate({ project: 'shop', user: 'rob', role: 'reader' });
    tokens.reader = (await admin.tokens.create.mutate({ name: 'rob', user: 'rob' })).token;
    await admin.projects.create.mutate({ project: 'other' });
    await admin.users.create.mutate({ name: 'bea' });
    await admin.projects.addMember.mutate({ project: 'other', user: 'bea', role: 'member' });
    tokens.other = (await admin.tokens.create.mutate({ name: 'bea', user: 'bea' })).token;
    deps = {
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: (token) =>
        localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${token}`))),
      callers: new TtlCache(5_000),
    };
    worker = await servicesWorkerFor(h);
  }, 60_000);

  afterAll(async () => {
    await worker?.shutdown();
    await h?.close();
    await image?.remove();
  });

  const web = {
    project: 'shop',
    name: 'web',
    template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
    replicas: 2,
    everySeconds: 5,
  };

  it('lets only a member of the project declare a service; others do not see it', async () => {
    expect(await code(as(undefined).services.list({ project: 'shop' }))).toBe('UNAUTHORIZED');
    expect(await code(as(`vgc_${'x'.repeat(43)}`).services.list({ project: 'shop' }))).toBe(
      'UNAUTHORIZED',
    );
    expect(await code(as(tokens.other).services.create(web))).toBe('NOT_FOUND');
    expect(await code(as(tokens.reader).services.create(web))).toBe('FORBIDDEN');
    expect(await code(as(tokens.reader).services.list({ project: 'shop' }))).toBe('ok');
    expect(await code(as(tokens.member).services.create({ ...web, name: 'Bad' }))).toBe(
      'BAD_REQUEST',
    );
    // A project named like a built-in of objects is no role of anybody's.
    await admin.projects.create.mutate({ project: 'constructor' });
    for (const t of [tokens.other, tokens.member]) {
      expect(await code(as(t).services.list({ project: 'constructor' }))).toBe('NOT_FOUND');
      expect(await code(as(t).services.create({ ...web, project: 'constructor' }))).toBe(
        'NOT_FOUND',
      );
    }
    // No NUL reaches the records: refused, nothing made.
    expect(
      await code(
        as(tokens.member).services.create({
          ...web,
          name: 'nul',
          template: { ...web.template, userData: 'a\u0000b' },
        }),
      ),
    ).toBe('BAD_REQUEST');
    expect(await as(tokens.member).services.list({ project: 'shop' })).toEqual([]);
  });

  it('keeps a declared service running, follows a scale, and deletes it whole', async () => {
    const made = await as(tokens.member).services.create({
      ...web,
      template: { ...web.template, userData: '#cloud-config\npassword: hunter2\n' },
    });
    // What the cloud never shows a reader, the service layer does not either.
    expect(made.template).toMatchObject({ userData: '(set)', sshAuthorizedKeys: 0 });
    expect(
      JSON.stringify(await as(tokens.reader).services.list({ project: 'shop' })),
    ).not.toContain('hunter2');
    expect(made).toMatchObject({ name: 'web', replicas: 2, createdBy: 'ann' });
    expect(made.schedule).toMatchObject({ id: 'service:shop/web', paused: false });
    expect(made).not.toHaveProperty('token');
    await until('2 running', async () => (await running()) === 2);
    expect(await code(as(tokens.member).services.create(web))).toBe('CONFLICT');
    // A reader sees it; another project's member does not.
    expect(
      (await as(tokens.reader).services.get({ project: 'shop', name: 'web' })).members,
    ).toHaveLength(2);
    expect(await code(as(tokens.other).services.get({ project: 'shop', name: 'web' }))).toBe(
      'NOT_FOUND',
    );

    await as(tokens.member).services.update({ project: 'shop', name: 'web', replicas: 3 });
    await until('3 running', async () => (await running()) === 3);

    // Paused, a change waits; resumed, it is made.
    await as(tokens.member).services.pause({ project: 'shop', name: 'web' });
    await as(tokens.member).services.update({ project: 'shop', name: 'web', replicas: 1 });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await running()).toBe(3);
    await as(tokens.member).services.resume({ project: 'shop', name: 'web' });
    await until('1 running', async () => (await running()) === 1);

    await as(tokens.member).services.delete({ project: 'shop', name: 'web' });
    await until(
      'the service gone',
      async () =>
        (await code(as(tokens.member).services.get({ project: 'shop', name: 'web' }))) ===
        'NOT_FOUND',
    );
    expect(await running()).toBe(0);
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
  });

  it('is not stranded when its token dies: a member’s change gives it a new one', async () => {
    await as(tokens.member).services.create({ ...web, name: 'api', replicas: 1 });
    const apiRunning = async () =>
      (await admin.instances.list.query({ project: 'shop', prefix: 'api-' })).filter(
        (i) => i.state === 'running',
      ).length;
    await until('api running', async () => (await apiRunning()) === 1);
    // Its token is revoked (as it would be with its creator's): its reconciles say so.
    const own = (await admin.tokens.list.query({ user: 'ann' })).find(
      (t) => t.name === 'service-api' && !t.revokedAt,
    )!;
    await admin.tokens.revoke.mutate({ id: own.id });
    await until('its status to say it cannot act', async () => {
      const s = await as(tokens.member).services.get({ project: 'shop', name: 'api' });
      return typeof s.status.error === 'string' && s.status.failedAt! > String(own.createdAt);
    });
    // A member scales it: it acts again, with a new token of the member's.
    await as(tokens.member).services.update({ project: 'shop', name: 'api', replicas: 2 });
    await until('api scaled with its new token', async () => (await apiRunning()) === 2);
    const events = await as(tokens.member).services.events({ project: 'shop', name: 'api' });
    expect(events.map((e) => e.action)).toContain('services.token');
    const live = (await admin.tokens.list.query({ user: 'ann' })).filter(
      (t) => t.name === 'service-api' && !t.revokedAt,
    );
    expect(live).toHaveLength(1);
    expect(live[0]!.id).not.toBe(own.id);

    await as(tokens.member).services.delete({ project: 'shop', name: 'api' });
    await until('api gone', async () => (await apiRunning()) === 0);
    await until(
      'its token revoked with it',
      async () =>
        !(await admin.tokens.list.query({ user: 'ann' })).some(
          (t) => t.name === 'service-api' && !t.revokedAt,
        ),
    );
  });
});
