import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/** The refusal's code and message, or `ok`. */
async function refused(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  return call.then(
    () => ({ code: 'ok', message: '' }),
    (err: unknown) => ({ code: errorCode(err) ?? String(err), message: (err as Error).message }),
  );
}

/**
 * The cloud layer over two clusters: this deployment's own (`local`, reached in-process
 * through its API) and another vagoth stack on this machine (its own database and Temporal
 * namespace), reached over HTTP with a cluster token.
 */
describe('the cloud layer', () => {
  let remote: Harness;
  let h: Harness;
  let admin: CloudClient;
  let remoteOrigin: string;
  let remoteClosed = false;

  beforeAll(async () => {
    remote = await startHarness({ http: true });
    remoteOrigin = new URL(remote.apiUrl).origin;
    h = await startHarness({
      cloud: { clusterUrls: [`${remoteOrigin}/trpc`], clusterTimeoutMs: 2_000 },
    });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    for (const [harness, name, memoryMiB] of [
      [h, 'cl-a', 8192],
      [h, 'cl-b', 4096],
      [remote, 'cl-r', 2048],
    ] as const) {
      const uri = await harness.simulatedHost(name, { cpus: 4, memoryMiB });
      await harness.api.hosts.register({ name, driver: 'libvirt', uri, diskGiB: 100 });
    }
  });

  afterAll(async () => {
    await h?.close();
    if (!remoteClosed) await remote?.close();
  });

  it('registers this deployment’s cluster as `local` and sums its hosts through its API', async () => {
    expect((await admin.clusters.list.query()).map((c) => [c.name, c.driver])).toEqual([
      ['local', 'local'],
    ]);
    const local = await admin.clusters.get.query({ name: 'local' });
    expect(local).toMatchObject({
      unreachable: null,
      capacity: {
        hosts: 2,
        activeHosts: 2,
        vms: 0,
        offered: { vcpus: 8, memoryMiB: 12288, diskGiB: 200 },
        free: { vcpus: 8, memoryMiB: 12288, diskGiB: 200 },
      },
    });
    // The cluster's token never leaves the cloud.
    expect(local).not.toHaveProperty('token');
  });

  it('reaches another vagoth cluster over HTTP only where the operator allows, with a token that works', async () => {
    const token = remote.token;
    const url = `${remoteOrigin}/trpc`;
    const bad: Array<[Record<string, unknown>, string, string]> = [
      [{ url: 'http://127.0.0.2:9/trpc', token }, 'BAD_REQUEST', 'VAGOTH_CLOUD_CLUSTER_URLS'],
      [{ url: `${remoteOrigin}/trpcx`, token }, 'BAD_REQUEST', 'VAGOTH_CLOUD_CLUSTER_URLS'],
      [{ url: url.replace('http://', 'http://a:b@'), token }, 'BAD_REQUEST', 'credentials'],
      [{ url: `${url}/%2e%2e%2fadmin`, token }, 'BAD_REQUEST', 'url'],
      [{ url: 'file:///etc/passwd', token }, 'BAD_REQUEST', 'url'],
      [{ url }, 'BAD_REQUEST', 'token'],
      // Well-formed, but not a token of that cluster's: it is refused, and nothing recorded.
      [{ url, token: `vgt_${'x'.repeat(43)}` }, 'BAD_GATEWAY', "refused the cloud's token"],
    ];
    for (const [more, code, says] of bad) {
      const r = await refused(
        admin.clusters.register.mutate({ name: 'far', driver: 'vagoth', ...more } as never),
      );
      expect(r, JSON.stringify(more) + r.message).toMatchObject({ code });
      expect(r.message, JSON.stringify(more)).toContain(says);
    }
    expect((await admin.clusters.list.query()).map((c) => c.name)).toEqual(['local']);
    // A second local cluster: there is one cluster controller in this deployment.
    expect(
      (await refused(admin.clusters.register.mutate({ name: 'again', driver: 'local' }))).code,
    ).toBe('CONFLICT');

    const far = await admin.clusters.register.mutate({
      name: 'far',
      driver: 'vagoth',
      url,
      token,
      region: 'east',
    });
    expect(far).toMatchObject({ name: 'far', driver: 'vagoth', region: 'east', url });
    expect(far).not.toHaveProperty('token');
    expect(far.capacity).toMatchObject({ hosts: 1, free: { memoryMiB: 2048 } });
    expect((await admin.clusters.drain.mutate({ name: 'far' })).draining).toBe(true);
    expect((await admin.clusters.drain.mutate({ name: 'far', draining: false })).draining).toBe(
      false,
    );
  });

  it('keeps the users’ projects apart, and records who changed what', async () => {
    await admin.projects.create.mutate({ project: 'alpha' });
    await admin.projects.create.mutate({ project: 'beta' });
    await admin.users.create.mutate({ name: 'ann' });
    await admin.users.create.mutate({ name: 'bob' });
    await admin.projects.addMember.mutate({ project: 'alpha', user: 'ann', role: 'member' });
    await admin.projects.addMember.mutate({ project: 'beta', user: 'bob', role: 'member' });
    const ann = cloudClient(
      h.cloud!.url,
      (await admin.tokens.create.mutate({ name: 'ann', user: 'ann' })).token,
    );

    expect((await ann.projects.list.query()).map((p) => [p.name, p.role])).toEqual([
      ['alpha', 'member'],
    ]);
    expect((await ann.projects.get.query({ project: 'alpha' })).members).toMatchObject([
      { user: 'ann', role: 'member' },
    ]);
    // Another project answers as one that does not exist: its name does not leak.
    const other = await refused(ann.projects.get.query({ project: 'beta' }));
    const none = await refused(ann.projects.get.query({ project: 'gamma' }));
    expect(other.code).toBe('NOT_FOUND');
    expect(other.message.replace('beta', 'X')).toBe(none.message.replace('gamma', 'X'));

    const events = await ann.projects.events.query({ project: 'alpha' });
    expect(events.map((e) => [e.action, e.target, e.user])).toEqual([
      ['projects.addMember', 'ann', 'admin'],
      ['projects.create', 'alpha', 'admin'],
    ]);
    expect(events[0]!.tokenId).toBe((await admin.users.me.query()).token.id);
    // The cloud's own history, for its admins: changes outside any project too.
    const all = await admin.events.list.query({ limit: 500 });
    expect(all.find((e) => e.action === 'users.create' && e.target === 'bob')).toMatchObject({
      project: null,
      user: 'admin',
    });
    expect(all.find((e) => e.action === 'projects.addMember')).toMatchObject({ project: 'beta' });
    // Newest first: far by the admin, local by the cloud itself as it first started.
    expect(
      (await admin.events.list.query({ action: 'clusters.register' })).map((e) => [
        e.target,
        e.user,
      ]),
    ).toEqual([
      ['far', 'admin'],
      ['local', null],
    ]);
    await expect(ann.events.list.query({})).rejects.toThrow(/admin/);
  });

  it('gives tokens that are never more than their holder, and take effect at once', async () => {
    await admin.projects.addMember.mutate({ project: 'beta', user: 'ann', role: 'reader' });
    const annToken = (await admin.tokens.create.mutate({ name: 'ann-2', user: 'ann' })).token;
    const ann = cloudClient(h.cloud!.url, annToken);
    expect((await ann.projects.list.query()).map((p) => p.name)).toEqual(['alpha', 'beta']);

    // Narrowed to alpha and read-only: beta is gone from its view, and it makes no tokens.
    const narrow = await ann.tokens.create.mutate({ name: 'ci', project: 'alpha', readOnly: true });
    expect(narrow).toMatchObject({ user: 'ann', project: 'alpha', readOnly: true });
    const ci = cloudClient(h.cloud!.url, narrow.token);
    expect((await ci.projects.list.query()).map((p) => p.name)).toEqual(['alpha']);
    expect((await refused(ci.projects.get.query({ project: 'beta' }))).code).toBe('NOT_FOUND');
    expect((await refused(ci.tokens.create.mutate({ name: 'more' }))).code).toBe('FORBIDDEN');
    // A project its holder does not belong to, or one it cannot see.
    expect((await refused(ann.tokens.create.mutate({ name: 'x', project: 'gamma' }))).code).toBe(
      'NOT_FOUND',
    );
    // Another user's tokens: not its business.
    const bob = (await admin.tokens.create.mutate({ name: 'bob', user: 'bob' })).id;
    expect((await refused(ann.tokens.revoke.mutate({ id: bob }))).code).toBe('NOT_FOUND');
    expect((await refused(ann.tokens.list.query({ user: 'bob' }))).code).toBe('FORBIDDEN');
    expect((await refused(ann.tokens.create.mutate({ name: 'x', user: 'bob' }))).code).toBe(
      'FORBIDDEN',
    );

    // Revoked, it stops at once; so do a disabled user's.
    await ann.tokens.revoke.mutate({ id: narrow.id });
    expect((await refused(ci.projects.list.query())).code).toBe('UNAUTHORIZED');
    await admin.users.disable.mutate({ user: 'ann' });
    expect((await refused(ann.projects.list.query())).code).toBe('UNAUTHORIZED');
    // An admin cannot shut itself out.
    expect((await refused(admin.users.disable.mutate({ user: 'admin' }))).code).toBe(
      'PRECONDITION_FAILED',
    );
  });

  it('answers a cluster that stops answering as unreachable, and goes on serving', async () => {
    await remote.close();
    remoteClosed = true;
    const started = Date.now();
    const far = await admin.clusters.get.query({ name: 'far' });
    expect(far).toMatchObject({ capacity: null, unreachable: expect.stringContaining('far') });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await admin.clusters.get.query({ name: 'local' })).capacity).toMatchObject({
      hosts: 2,
    });
    await admin.clusters.remove.mutate({ name: 'far' });
    expect((await refused(admin.clusters.get.query({ name: 'far' }))).code).toBe('NOT_FOUND');
  });
});
