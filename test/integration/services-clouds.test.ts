import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otherClouds } from '../../services/clouds/index.ts';
import { revokeTokens } from '../../services/revocations.ts';
import { localCloudFor } from '../../workers/services.ts';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { pausableProxy, type PausableProxy } from '../support/pausable-proxy.ts';
import { rawCall } from '../support/raw-call.ts';
import { servicesClient, servicesServer } from '../support/services-server.ts';

/**
 * A service over two vagoth clouds: this deployment's and `east`, another deployment the
 * operator allows (reached through a proxy the test can pause), where the service's instances
 * are in project `outlet` of user bob's. Each cloud's own quota applies; a cloud not allowed,
 * credentials that are not good there, or not wanted, are refused before anything is made;
 * the service's token in east is minted there, never shown, and revoked once it is not needed.
 */
describe('a service spanning two clouds', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let east: Harness;
  let proxy: PausableProxy;
  let h: Harness;
  let admin: CloudClient;
  let eastAdmin: CloudClient;
  let server: Awaited<ReturnType<typeof servicesServer>>;
  let token: string;
  let bobToken: string;
  let eveToken: string;
  let carlToken: string;

  const svc = () => servicesClient(server.trpcUrl, token);
  const template = { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] };
  const localWeb = () => admin.instances.list.query({ project: 'shop', prefix: 'web-' });
  const eastWeb = () => eastAdmin.instances.list.query({ project: 'outlet', prefix: 'web-' });
  const running = async (list: () => ReturnType<typeof localWeb>) =>
    (await list()).filter((i) => i.state === 'running').length;
  const service = () => svc().services.get.query({ project: 'shop', name: 'web' });
  const show = async () =>
    JSON.stringify({
      local: (await localWeb()).map((i) => [i.name, i.state]),
      east: (await eastWeb()).map((i) => [i.name, i.state]),
      status: (await service()).status,
    });
  /** The tokens the service keeps in other clouds, as its store has them. */
  const kept = () =>
    h.sql<{ cloud: string; project: string; token: string; token_id: string; url: string }[]>`
      SELECT cloud, project, token, token_id, url FROM services.cloud_tokens ORDER BY cloud`;
  const unrevoked = async (client: CloudClient, user: string) =>
    (await client.tokens.list.query({ user })).filter((t) => t.revokedAt === null).length;
  /** Tokens queued to be revoked, as the store has them. */
  const queued = () =>
    h.sql<{ cloud: string; token_id: string; attempts: number; last_error: string | null }[]>`
      SELECT cloud, token_id, attempts, last_error FROM services.revocations ORDER BY id`;
  let clouds: ReturnType<typeof otherClouds>;

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-clouds-');
    east = await startHarness({ images: image.images('store-east'), cloud: {} });
    const eastApi = new URL(east.cloud!.url);
    proxy = await pausableProxy({ host: eastApi.hostname, port: Number(eastApi.port) });
    h = await startHarness({ images: image.images('store-local'), cloud: {} });
    const size = { cpus: 32, memoryMiB: 32 * 1024 };
    await image.addHostWithImage(h, 'svc-local', size);
    await image.addHostWithImage(east, 'svc-east', size);

    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    token = await shopWithMember(admin, 'ann');
    await admin.users.create.mutate({ name: 'carl' });
    await admin.projects.addMember.mutate({ project: 'shop', user: 'carl', role: 'member' });
    carlToken = (
      await admin.tokens.create.mutate({ name: 'carl-shop', user: 'carl', project: 'shop' })
    ).token;
    eastAdmin = cloudClient(east.cloud!.url, east.cloud!.adminToken);
    await eastAdmin.projects.create.mutate({ project: 'outlet' });
    await eastAdmin.projects.create.mutate({ project: 'other' });
    await eastAdmin.users.create.mutate({ name: 'bob' });
    await eastAdmin.users.create.mutate({ name: 'eve' });
    await eastAdmin.projects.addMember.mutate({ project: 'outlet', user: 'bob', role: 'member' });
    await eastAdmin.projects.addMember.mutate({ project: 'other', user: 'eve', role: 'member' });
    await eastAdmin.images.publish.mutate({ cluster: 'local', image: 'base' });
    await eastAdmin.networks.grant.mutate({ cluster: 'local', network: 'default' });
    await eastAdmin.quotas.set.mutate({ project: 'outlet', instances: 2 });
    bobToken = (
      await eastAdmin.tokens.create.mutate({ name: 'bob', user: 'bob', project: 'outlet' })
    ).token;
    eveToken = (await eastAdmin.tokens.create.mutate({ name: 'eve', user: 'eve' })).token;

    clouds = otherClouds({ east: `${proxy.origin}${eastApi.pathname}` }, 1_000);
    server = await servicesServer(h, { worker: true, clouds });
  }, 180_000);

  afterAll(async () => {
    proxy?.resume();
    await server?.close();
    await h?.close();
    await proxy?.close();
    await east?.close();
    await image?.remove();
  });

  it('refuses, before anything is made, a cloud not allowed and credentials not good there', async () => {
    const base = { project: 'shop', name: 'web', template };
    const inEast = [{ replicas: 1 }, { cloud: 'east', replicas: 1 }];
    const bob = { token: bobToken, project: 'outlet' };
    const refused = async (input: unknown, code: string, field: string, quick = true) => {
      const started = Date.now();
      const err = await svc()
        .services.create.mutate(input as never)
        .then(
          () => null,
          (e: unknown) => e as Error,
        );
      expect(err, field).not.toBeNull();
      expect([errorCode(err), err!.message]).toEqual([code, expect.stringContaining(field)]);
      if (quick) expect(Date.now() - started).toBeLessThan(1_000);
      return err!.message;
    };
    const west = [{ replicas: 1 }, { cloud: 'west', replicas: 1 }];
    expect(
      await refused(
        { ...base, placements: west, clouds: { west: bob } },
        'BAD_REQUEST',
        'placements.1.cloud',
      ),
    ).toMatch(/no cloud "west" is known here/);
    for (const cloud of [
      `${proxy.origin}/cloud/trpc`,
      '../east',
      'east/../../x',
      'constructor',
      'x'.repeat(5_000),
    ]) {
      await refused(
        { ...base, placements: [{ replicas: 1 }, { cloud, replicas: 1 }] },
        'BAD_REQUEST',
        'placements.1.cloud',
      );
    }
    // Credentials for a cloud no placement names; none for one that is.
    await refused({ ...base, replicas: 1, clouds: { east: bob } }, 'BAD_REQUEST', 'clouds.east');
    await refused(
      { ...base, placements: [{ replicas: 1 }], clouds: { east: bob } },
      'BAD_REQUEST',
      'clouds.east: no placement names cloud east',
    );
    await refused({ ...base, placements: inEast }, 'BAD_REQUEST', 'clouds.east: is required');
    await refused(
      { ...base, placements: inEast, clouds: { east: { ...bob, token: 'x'.repeat(100_000) } } },
      'BAD_REQUEST',
      'clouds.east.token',
    );
    await refused(
      { ...base, placements: inEast, clouds: { east: { ...bob, url: 'http://evil.example/' } } },
      'BAD_REQUEST',
      'clouds.east',
    );
    // Checked with east itself: a token it does not know, a user not a member there.
    await refused(
      { ...base, placements: inEast, clouds: { east: { ...bob, token: 'vgc_nope' } } },
      'BAD_REQUEST',
      'clouds.east.token: cloud east does not know this token',
      false,
    );
    await refused(
      { ...base, placements: inEast, clouds: { east: { token: eveToken, project: 'outlet' } } },
      'FORBIDDEN',
      'clouds.east.project',
      false,
    );
    await refused(
      { ...base, placements: inEast, clouds: { east: { ...bob, project: 'other' } } },
      'FORBIDDEN',
      'clouds.east.project',
      false,
    );
    // The same cloud twice in one body: JSON's last one is the one checked (and used).
    const body = JSON.stringify({ ...base, placements: inEast, clouds: { east: bob } }).replace(
      `"clouds":{"east":${JSON.stringify(bob)}}`,
      `"clouds":{"east":${JSON.stringify(bob)},"east":{"token":"vgc_nope","project":"outlet"}}`,
    );
    expect(body.match(/"east":\{"token"/g)).toHaveLength(2);
    const twice = await rawCall(server.trpcUrl, 'services.create', 'mutation', body, {
      authorization: `Bearer ${token}`,
    });
    expect([twice.status, twice.code]).toEqual([400, 'BAD_REQUEST']);
    expect(twice.text).toContain('clouds.east.token');

    // Nothing of any of them: no service, no instance, no token minted in either cloud.
    expect(await svc().services.list.query({ project: 'shop' })).toEqual([]);
    expect(await localWeb()).toEqual([]);
    expect(await eastWeb()).toEqual([]);
    expect(await kept()).toEqual([]);
    expect(await unrevoked(eastAdmin, 'bob')).toBe(1);
    expect(await unrevoked(admin, 'ann')).toBe(1);
  }, 60_000);

  it('keeps two replicas in each cloud, each under its own quota, and never shows a token', async () => {
    await svc().services.create.mutate({
      project: 'shop',
      name: 'web',
      template,
      placements: [{ replicas: 2 }, { cloud: 'east', replicas: 2 }],
      clouds: { east: { token: bobToken, project: 'outlet' } },
      everySeconds: 5,
      unknownGraceSeconds: 600,
    });
    await until(
      '2 running in each cloud',
      async () => (await running(localWeb)) === 2 && (await running(eastWeb)) === 2,
      show,
    );
    const got = await service();
    expect(got.clouds).toEqual([{ cloud: 'east', project: 'outlet' }]);
    expect(got.members.map((m) => [m.cloud ?? null, m.placement])).toEqual([
      [null, 'any'],
      [null, 'any'],
      ['east', 'cloud:east'],
      ['east', 'cloud:east'],
    ]);
    const localNames = (await localWeb()).map((i) => i.name).sort();
    const eastNames = (await eastWeb()).map((i) => i.name).sort();
    expect(new Set([...localNames, ...eastNames]).size).toBe(4);

    // The token kept is one minted in east for the project, not bob's; it works there.
    const [stored] = await kept();
    // With the URL that minted it: it is sent nowhere else.
    expect(stored).toMatchObject({ cloud: 'east', project: 'outlet', url: clouds.urlOf('east') });
    expect(stored!.token).not.toBe(bobToken);
    const minted = cloudClient(
      `${proxy.origin}${new URL(east.cloud!.url).pathname}`,
      stored!.token,
    );
    expect((await minted.users.me.query()).name).toBe('bob');
    const [own] = await h.sql<{ token: string }[]>`SELECT token FROM services.services`;
    const answers = JSON.stringify([
      await service(),
      await svc().services.list.query({ project: 'shop' }),
      await svc().services.events.query({ project: 'shop', name: 'web', limit: 100 }),
    ]);
    for (const secret of [stored!.token, bobToken, own!.token, token]) {
      expect(answers).not.toContain(secret);
    }

    // East's quota (2 instances of outlet) refuses a third there; this cloud's does not care.
    await svc().services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 3 }, { cloud: 'east', replicas: 3 }],
      clouds: { east: { token: bobToken, project: 'outlet' } },
    });
    await until(
      '3 running here, east refusing its third for its quota',
      async () =>
        (await running(localWeb)) === 3 &&
        ((await service()).status.refused ?? []).some((r) =>
          /^1 of 1 in cloud:east not made: .*quota/.test(r),
        ),
      show,
    );
    expect(await eastWeb()).toHaveLength(2);

    // East scaled to none: its instances go, only there.
    const here = (await localWeb()).map((i) => i.name).sort();
    await svc().services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 3 }, { cloud: 'east', replicas: 0 }],
    });
    await until('none left in east', async () => (await eastWeb()).length === 0, show);
    await until('settled', async () => (await service()).status.settled === true, show);
    expect((await localWeb()).map((i) => i.name).sort()).toEqual(here);
    expect(await running(localWeb)).toBe(3);
  }, 240_000);

  it('goes on in its own cloud while east does not answer, east’s members unknown', async () => {
    await svc().services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 3 }, { cloud: 'east', replicas: 2 }],
      clouds: { east: { token: bobToken, project: 'outlet' } },
    });
    await until('2 running in east', async () => (await running(eastWeb)) === 2, show);
    const inEast = (await eastWeb()).map((i) => i.name).sort();

    proxy.pause();
    await svc().services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 4 }, { cloud: 'east', replicas: 2 }],
    });
    await until(
      '4 running here, east’s members unknown',
      async () => {
        const { members, status } = await service();
        const far = members.filter((m) => m.cloud === 'east');
        return (
          (await running(localWeb)) === 4 &&
          far.length === 2 &&
          far.every((m) => m.unknownSince) &&
          (status.refused ?? []).some((r) => r.startsWith('cloud east not reached'))
        );
      },
      show,
    );
    // Behind the proxy, east still has them, running.
    expect((await eastWeb()).map((i) => [i.name, i.state])).toEqual(
      inEast.map((n) => [n, 'running']),
    );

    proxy.resume();
    await until(
      'east’s members seen again',
      async () => (await service()).members.every((m) => !m.unknownSince),
      show,
    );
    await until('settled', async () => (await service()).status.settled === true, show);
    expect((await eastWeb()).map((i) => i.name).sort()).toEqual(inEast);
  }, 240_000);

  it('lets a member here with nothing in east make the service do no more there', async () => {
    const carl = servicesClient(server.trpcUrl, carlToken);
    const [before] = await kept();
    const inEast = (await eastWeb()).map((i) => i.name).sort();
    expect(inEast).toHaveLength(2);
    const refused = async (change: Record<string, unknown>) => {
      const started = Date.now();
      const err = await carl.services.update
        .mutate({ project: 'shop', name: 'web', ...change })
        .then(
          () => null,
          (e: unknown) => e as Error,
        );
      expect([errorCode(err), err?.message]).toEqual([
        'BAD_REQUEST',
        expect.stringContaining('clouds.east: is required'),
      ]);
      expect(Date.now() - started).toBeLessThan(1_000);
    };
    // More replicas there, a placement new there, a new template rolled out there.
    await refused({ placements: [{ replicas: 4 }, { cloud: 'east', replicas: 3 }] });
    await refused({
      placements: [
        { replicas: 4 },
        { cloud: 'east', replicas: 1 },
        { cloud: 'east', cluster: 'local', replicas: 1 },
      ],
    });
    await refused({ template: { ...template, userData: '#!/bin/sh\necho carl\n' } });
    // Nothing of them took: the service, its east token and east's instances as they were.
    const got = await service();
    expect(got.placements).toEqual([{ replicas: 4 }, { cloud: 'east', replicas: 2 }]);
    expect(got.template.userData).toBeNull();
    expect(await kept()).toEqual([before]);
    expect((await eastWeb()).map((i) => i.name).sort()).toEqual(inEast);

    // Doing less there, or changing nothing there, needs nothing of east.
    await carl.services.update.mutate({ project: 'shop', name: 'web', everySeconds: 5 });
    await carl.services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 4 }, { cloud: 'east', replicas: 1 }],
    });
    await until('1 left in east', async () => (await eastWeb()).length === 1, show);
    expect(await kept()).toEqual([before]);
  }, 120_000);

  it('revokes its east token once east is not used, and needs credentials to go back', async () => {
    const [before] = await kept();
    await svc().services.update.mutate({
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 4 }],
    });
    await until(
      'east empty and the token revoked',
      async () => (await eastWeb()).length === 0 && (await kept()).length === 0,
      show,
    );
    const minted = cloudClient(east.cloud!.url, before!.token);
    expect(errorCode(await minted.users.me.query().catch((e: unknown) => e))).toBe('UNAUTHORIZED');
    expect((await service()).clouds).toEqual([]);

    const back = {
      project: 'shop',
      name: 'web',
      placements: [{ replicas: 3 }, { cloud: 'east', replicas: 1 }],
    };
    const err = await svc()
      .services.update.mutate(back)
      .catch((e: unknown) => e as Error);
    expect([errorCode(err), (err as Error).message]).toEqual([
      'BAD_REQUEST',
      expect.stringContaining('clouds.east: is required'),
    ]);
    await svc().services.update.mutate({
      ...back,
      clouds: { east: { token: bobToken, project: 'outlet' } },
    });
    await until('1 running in east', async () => (await running(eastWeb)) === 1, show);
  }, 240_000);

  it('revokes later a token east did not take at once, and never forgets it', async () => {
    const spare = await eastAdmin.tokens.create.mutate({
      name: 'service-spare',
      user: 'bob',
      project: 'outlet',
    });
    const direct = cloudClient(east.cloud!.url, spare.token);
    proxy.pause();
    const revoker = { sql: h.sql, cloudFor: localCloudFor(h.cloud!.deps), clouds };
    const first = await revokeTokens(revoker, 'shop/spare', [
      { cloud: 'east', token: spare.token, tokenId: spare.id },
    ]);
    expect(first).toEqual({ revoked: 0, left: 1 });
    // Recorded, with why in vagoth's words, and its next try pushed back (30 s, then longer).
    expect(await queued()).toEqual([
      { cloud: 'east', token_id: spare.id, attempts: 1, last_error: 'the cloud did not answer' },
    ]);
    const [due] = await h.sql<{ wait: number }[]>`
      SELECT extract(epoch FROM next_at - now())::float AS wait FROM services.revocations`;
    expect(due!.wait).toBeGreaterThan(20);
    expect(due!.wait).toBeLessThanOrEqual(30);
    // Not due: the worker's sweep (every second here) leaves it, and the token still works.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await queued())[0]?.attempts).toBe(1);
    expect((await direct.users.me.query()).name).toBe('bob');

    proxy.resume();
    await h.sql`UPDATE services.revocations SET next_at = now()`;
    await until('the sweep revoked it', async () => (await queued()).length === 0);
    expect(errorCode(await direct.users.me.query().catch((e: unknown) => e))).toBe('UNAUTHORIZED');
  }, 60_000);

  it('leaves nothing in either cloud once deleted, its east token revoked', async () => {
    const [stored] = await kept();
    expect(stored).toBeDefined();
    // Deleted while east does not answer: its own instances go, east's wait for east.
    proxy.pause();
    await svc().services.delete.mutate({ project: 'shop', name: 'web' });
    await until(
      'its own instances gone, east’s member waiting',
      async () => {
        const { members, status } = await service();
        return (
          (await localWeb()).length === 0 &&
          members.length === 1 &&
          members[0]!.cloud === 'east' &&
          (status.refused ?? []).some((r) => r.startsWith('cloud east not reached'))
        );
      },
      show,
    );
    expect(await kept()).toEqual([stored]);
    expect(await eastWeb()).toHaveLength(1);
    proxy.resume();
    await until(
      'the service gone',
      () =>
        service().then(
          () => false,
          (err: unknown) => errorCode(err) === 'NOT_FOUND',
        ),
      show,
    );
    expect(await localWeb()).toEqual([]);
    expect(await eastWeb()).toEqual([]);
    expect(await kept()).toEqual([]);
    expect(await queued()).toEqual([]);
    const minted = cloudClient(east.cloud!.url, stored!.token);
    expect(errorCode(await minted.users.me.query().catch((e: unknown) => e))).toBe('UNAUTHORIZED');
    expect(await unrevoked(eastAdmin, 'bob')).toBe(1);
  }, 120_000);

  it('finishes a delete whose east token died once credentials there renew it', async () => {
    const apiEast = () => eastAdmin.instances.list.query({ project: 'outlet', prefix: 'api-' });
    const api = () => svc().services.get.query({ project: 'shop', name: 'api' });
    const showApi = async () =>
      JSON.stringify({ east: await apiEast(), status: (await api()).status });
    await svc().services.create.mutate({
      project: 'shop',
      name: 'api',
      template,
      placements: [{ cloud: 'east', replicas: 1 }],
      clouds: { east: { token: bobToken, project: 'outlet' } },
      everySeconds: 5,
    });
    await until('1 running in east', async () => (await apiEast()).length === 1, showApi);
    // Its token there dies (revoked there, as when bob's own is): east refuses the service.
    const [dead] = await kept();
    const viaDead = cloudClient(east.cloud!.url, dead!.token);
    await viaDead.tokens.revoke.mutate({ id: dead!.token_id });
    await svc().services.delete.mutate({ project: 'shop', name: 'api' });
    await until(
      'the delete waiting for east',
      async () =>
        ((await api()).status.refused ?? []).some((r) => r.startsWith('cloud east not reached')),
      showApi,
    );
    expect(await apiEast()).toHaveLength(1);
    // Anything but its credentials is still refused on a service being deleted.
    const err = await svc()
      .services.update.mutate({ project: 'shop', name: 'api', everySeconds: 6 })
      .catch((e: unknown) => e as Error);
    expect(errorCode(err)).toBe('CONFLICT');

    await svc().services.update.mutate({
      project: 'shop',
      name: 'api',
      clouds: { east: { token: bobToken, project: 'outlet' } },
    });
    await until(
      'the service gone',
      () =>
        api().then(
          () => false,
          (e: unknown) => errorCode(e) === 'NOT_FOUND',
        ),
      showApi,
    );
    expect(await apiEast()).toEqual([]);
    expect(await kept()).toEqual([]);
    // The dead token its renewal replaced: east said it was dead, so nothing is left to try.
    expect(await queued()).toEqual([]);
    expect(await unrevoked(eastAdmin, 'bob')).toBe(1);
  }, 120_000);
});
