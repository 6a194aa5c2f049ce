import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { smallImage } from '../support/cloud-cluster.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

/** The refusal's code and message, or `ok`. */
async function refused(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  return call.then(
    () => ({ code: 'ok', message: '' }),
    (err: unknown) => ({ code: errorCode(err) ?? String(err), message: (err as Error).message }),
  );
}

type Created = Awaited<ReturnType<CloudClient['instances']['create']['mutate']>>;

/** Waits for an instance's operation to end, as the cloud passes on its cluster's answer. */
async function ended(c: CloudClient, project: string, name: string, op: Created['operation']) {
  for (let i = 0; i < 600; i++) {
    const detail = await c.instances.operation.query({
      project,
      name,
      id: op.id,
      runId: op.runId,
      updateId: op.updateId,
    });
    if (detail.status !== 'running' && detail.status !== 'queued') return detail;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`operation of ${project}/${name} never ended`);
}

/**
 * Instances of a cloud over two clusters: this deployment's (`local`) and another vagoth stack
 * on this machine (`far`: its own database and Temporal namespace, reached over HTTP). Each
 * cluster has imported the same small qcow2 image as `base`; the cloud lets a project use it
 * only where an admin published it.
 */
describe('cloud instances over two clusters', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let remote: Harness;
  let h: Harness;
  let admin: CloudClient;
  let ann: CloudClient; // member of alpha
  let bob: CloudClient; // member of beta
  let rita: CloudClient; // reader of alpha
  let remoteClosed = false;

  const instance = (name: string, more: Record<string, unknown> = {}) => ({
    name,
    vcpus: 1,
    memoryMiB: 64,
    image: 'base',
    diskGiB: 1,
    nics: [{ network: 'default' }],
    ...more,
  });

  /** Creates an instance and waits until its cluster has it running. */
  async function running(c: CloudClient, project: string, input: ReturnType<typeof instance>) {
    const created = await c.instances.create.mutate({ project, ...input });
    const end = await ended(c, project, input.name, created.operation);
    // A failure says why (the cluster's error), not only that it failed.
    expect(end, JSON.stringify(end)).toMatchObject({
      status: 'completed',
    });
    return c.instances.get.query({ project, name: input.name });
  }

  beforeAll(async () => {
    image = await smallImage('vagoth-cloud-instances-');
    remote = await startHarness({ http: true, images: image.images('store-far') });
    const remoteUrl = `${new URL(remote.apiUrl).origin}/trpc`;
    h = await startHarness({
      images: image.images('store-local'),
      cloud: { clusterUrls: [remoteUrl], clusterTimeoutMs: 2_000, reconcileMs: 200 },
    });
    const size = { cpus: 64, memoryMiB: 64 * 1024, diskGiB: 1000 };
    await image.addHostWithImage(h, 'ci-local', size);
    await image.addHostWithImage(remote, 'ci-far', size);

    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    await admin.clusters.register.mutate({
      name: 'far',
      driver: 'vagoth',
      url: remoteUrl,
      token: remote.token,
    });
    for (const p of ['alpha', 'beta', 'gamma']) await admin.projects.create.mutate({ project: p });
    const tokenOf = async (user: string, project: string, role: 'member' | 'reader') => {
      await admin.users.create.mutate({ name: user });
      await admin.projects.addMember.mutate({ project, user, role });
      return cloudClient(
        h.cloud!.url,
        (await admin.tokens.create.mutate({ name: user, user })).token,
      );
    };
    ann = await tokenOf('ann', 'alpha', 'member');
    bob = await tokenOf('bob', 'beta', 'member');
    rita = await tokenOf('rita', 'alpha', 'reader');
    await admin.projects.addMember.mutate({ project: 'gamma', user: 'ann', role: 'member' });
  }, 120_000);

  afterAll(async () => {
    await h?.close();
    if (!remoteClosed) await remote?.close();
    await image?.remove();
  });

  it('lets a project use only the images and networks published to it or to all', async () => {
    // Nothing published yet: the image is not there for alpha, whatever its clusters hold.
    let r = await refused(ann.instances.create.mutate({ project: 'alpha', ...instance('w') }));
    expect(r).toMatchObject({ code: 'NOT_FOUND', message: 'image "base" not found' });

    await admin.images.publish.mutate({ cluster: 'local', image: 'base' }); // public
    await admin.images.publish.mutate({ cluster: 'far', image: 'base', project: 'alpha' });
    await admin.networks.grant.mutate({ cluster: 'local', network: 'default', project: 'alpha' });
    await admin.networks.grant.mutate({ cluster: 'far', network: 'default', project: 'alpha' });
    // Publishing twice changes nothing.
    await admin.images.publish.mutate({ cluster: 'local', image: 'base' });

    expect(await ann.images.list.query({ project: 'alpha' })).toMatchObject([
      { cluster: 'far', name: 'base', owner: 'alpha' },
      { cluster: 'local', name: 'base', owner: 'public' },
    ]);
    // beta sees the public image only, and none of alpha's grants.
    expect(await bob.images.list.query({ project: 'beta' })).toMatchObject([
      { cluster: 'local', name: 'base', owner: 'public' },
    ]);
    expect(await bob.networks.list.query({ project: 'beta' })).toEqual([]);
    // beta has the image on local but no network there: refused, and nothing claimed.
    r = await refused(bob.instances.create.mutate({ project: 'beta', ...instance('w') }));
    expect(r).toMatchObject({ code: 'NOT_FOUND', message: 'network "default" not found' });
    // On far, not even the image: alpha's grant is not beta's.
    r = await refused(
      bob.instances.create.mutate({
        project: 'beta',
        ...instance('w', { nics: [], cluster: 'far' }),
      }),
    );
    expect(r).toMatchObject({ code: 'NOT_FOUND', message: 'image "base" not found' });
    // A reader of alpha may look, not create; a member may not publish.
    r = await refused(rita.instances.create.mutate({ project: 'alpha', ...instance('w') }));
    expect(r.code).toBe('FORBIDDEN');
    r = await refused(ann.images.publish.mutate({ cluster: 'far', image: 'base' }));
    expect(r.code).toBe('FORBIDDEN');
    expect((await bob.quotas.get.query({ project: 'beta' })).usage.instances).toBe(0);

    // Taken back: a grant that is not there is not found; the project's history says who.
    await admin.networks.grant.mutate({ cluster: 'far', network: 'default', project: 'beta' });
    await admin.networks.revoke.mutate({ cluster: 'far', network: 'default', project: 'beta' });
    r = await refused(
      admin.networks.revoke.mutate({ cluster: 'far', network: 'default', project: 'beta' }),
    );
    expect(r.code).toBe('NOT_FOUND');
    expect(
      (await bob.projects.events.query({ project: 'beta' })).slice(0, 2).map((e) => e.action),
    ).toEqual(['networks.revoke', 'networks.grant']);
  });

  it('puts two projects’ instances in both clusters under names that never collide', async () => {
    await admin.images.publish.mutate({ cluster: 'far', image: 'base', project: 'beta' });
    for (const cluster of ['local', 'far']) {
      await admin.networks.grant.mutate({ cluster, network: 'default', project: 'beta' });
    }
    const made = await Promise.all([
      running(ann, 'alpha', instance('web-1', { cluster: 'local' })),
      running(ann, 'alpha', instance('web-2', { cluster: 'far' })),
      running(bob, 'beta', instance('web-1', { cluster: 'far' })),
      running(bob, 'beta', instance('web-2', { cluster: 'local' })),
    ]);
    for (const i of made) {
      expect(i).toMatchObject({ state: 'running', error: null });
      expect(i.addresses).toEqual([
        { network: 'default', ip: expect.stringMatching(/^10\./), mac: expect.any(String) },
      ]);
    }

    // Each project's list holds its own instances, from both clusters, and no other's.
    const listed = async (c: CloudClient, project: string) =>
      (await c.instances.list.query({ project })).map((i) => [i.name, i.cluster, i.state]);
    expect(await listed(ann, 'alpha')).toEqual([
      ['web-1', 'local', 'running'],
      ['web-2', 'far', 'running'],
    ]);
    expect(await listed(rita, 'alpha')).toEqual(await listed(ann, 'alpha'));
    // By the start of their names (as a service lists its own `<service>-<n>`).
    expect(
      (await ann.instances.list.query({ project: 'alpha', prefix: 'web-2' })).map((i) => i.name),
    ).toEqual(['web-2']);
    expect(await listed(bob, 'beta')).toEqual([
      ['web-1', 'far', 'running'],
      ['web-2', 'local', 'running'],
    ]);
    expect((await refused(bob.instances.get.query({ project: 'alpha', name: 'web-1' }))).code).toBe(
      'NOT_FOUND',
    );
    // A name is a project's: alpha cannot make a second web-1, beta has one of its own.
    const again = await refused(
      ann.instances.create.mutate({ project: 'alpha', ...instance('web-1') }),
    );
    expect(again.code).toBe('CONFLICT');

    // In the clusters, each VM under a name of its project's, tagged with it.
    const vms = async (c: Harness) =>
      (await c.api.vms.list()).map((v) => [v.name, v.tags['vagoth.cloud/project']]).sort();
    expect(await vms(h)).toEqual([
      ['alpha.web-1', 'alpha'],
      ['beta.web-2', 'beta'],
    ]);
    expect(await vms(remote)).toEqual([
      ['alpha.web-2', 'alpha'],
      ['beta.web-1', 'beta'],
    ]);

    // An operation passes to the instance's cluster, and its outcome comes back.
    const stop = await ann.instances.stop.mutate({ project: 'alpha', name: 'web-2' });
    expect(stop.operation.url).toEqual(expect.any(String));
    expect(await ended(ann, 'alpha', 'web-2', stop.operation)).toMatchObject({
      status: 'completed',
    });
    expect((await ann.instances.get.query({ project: 'alpha', name: 'web-2' })).state).toBe(
      'stopped',
    );
    // Its history: what was asked of it, by whom, with each operation the cluster started.
    const history = await rita.instances.operations.query({ project: 'alpha', name: 'web-2' });
    expect(history.map((e) => [e.action, e.user, e.operation?.id ?? null])).toEqual([
      ['instances.stop', 'ann', stop.operation.id],
      ['instances.create-taken', 'ann', 'vm:alpha.web-2'],
      ['instances.create', 'ann', null],
    ]);
    expect(history[0]!.operation).toEqual(stop.operation);
    // Only the instance's own operations: another VM's is not the caller's to read.
    const other = await refused(
      ann.instances.operation.query({
        project: 'alpha',
        name: 'web-2',
        id: 'vm:beta.web-1',
      }),
    );
    expect(other.code).toBe('NOT_FOUND');
  });

  it('gives exactly the quota to fifty concurrent creates, and takes every share back on delete', async () => {
    for (const cluster of ['local', 'far']) {
      await admin.networks.grant.mutate({ cluster, network: 'default', project: 'gamma' });
    }
    await admin.images.publish.mutate({ cluster: 'far', image: 'base' });
    await admin.quotas.set.mutate({ project: 'gamma', instances: 10, vcpus: 40 });

    const names = Array.from({ length: 50 }, (_, i) => `q-${i}`);
    const outcomes = await Promise.all(
      names.map((name) =>
        ann.instances.create.mutate({ project: 'gamma', ...instance(name) }).then(
          (c) => ({ code: 'ok', message: '', created: c }),
          (err: unknown) => ({
            code: errorCode(err) ?? String(err),
            message: (err as Error).message,
            created: null,
          }),
        ),
      ),
    );
    const ok = outcomes.filter((o) => o.created !== null);
    expect(ok).toHaveLength(10);
    for (const o of outcomes.filter((x) => x.created === null)) {
      expect(o).toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: 'project gamma is over its instances quota: limit 10, in use 10, asked 1',
      });
    }
    const quota = await ann.quotas.get.query({ project: 'gamma' });
    expect(quota.usage).toMatchObject({ instances: 10, vcpus: 10, memoryMiB: 640, ips: 10 });
    // The ten went where the cloud placed them, and each is running there.
    const live = await ann.instances.list.query({ project: 'gamma' });
    expect(live).toHaveLength(10);
    for (const o of ok) {
      const name = o.created!.instance.name;
      expect(await ended(ann, 'gamma', name, o.created!.operation)).toMatchObject({
        status: 'completed',
      });
    }
    // Ten VMs in all, in the clusters the cloud recorded, and no more.
    const gammaVms = async (c: Harness) =>
      (await c.api.vms.list()).map((v) => v.name).filter((n) => n.startsWith('gamma.'));
    const where = live.map((i) => `${i.cluster}:gamma.${i.name}`).sort();
    expect(
      [
        ...(await gammaVms(h)).map((n) => `local:${n}`),
        ...(await gammaVms(remote)).map((n) => `far:${n}`),
      ].sort(),
    ).toEqual(where);

    // A create its cluster refuses (an address outside the network) gives its share back.
    // A limit set alone leaves the others as they were.
    await admin.quotas.set.mutate({ project: 'gamma', instances: 11 });
    expect((await ann.quotas.get.query({ project: 'gamma' })).quota).toMatchObject({
      instances: 11,
      vcpus: 40,
      memoryMiB: null,
    });
    const bad = await refused(
      ann.instances.create.mutate({
        project: 'gamma',
        ...instance('bad', { nics: [{ network: 'default', ip: '192.0.2.1' }], cluster: 'local' }),
      }),
    );
    expect(bad.code).toBe('BAD_REQUEST');
    expect((await ann.quotas.get.query({ project: 'gamma' })).usage.instances).toBe(10);
    // Over the vCPU limit: the refusal names that quota.
    const big = await refused(
      ann.instances.create.mutate({ project: 'gamma', ...instance('big', { vcpus: 31 }) }),
    );
    expect(big.message).toBe(
      'project gamma is over its vcpus quota: limit 40, in use 10, asked 31',
    );

    await Promise.all(
      live.map((i) => ann.instances.delete.mutate({ project: 'gamma', name: i.name })),
    );
    expect((await ann.quotas.get.query({ project: 'gamma' })).usage).toEqual({
      instances: 0,
      vcpus: 0,
      memoryMiB: 0,
      diskGiB: 0,
      ips: 0,
    });
    expect(await ann.instances.list.query({ project: 'gamma' })).toEqual([]);
  });

  it('says an address another project holds is taken, without naming who holds it', async () => {
    const theirs = (await ann.instances.get.query({ project: 'alpha', name: 'web-1' }))
      .addresses[0]!;
    const r = await refused(
      bob.instances.create.mutate({
        project: 'beta',
        ...instance('thief', { cluster: 'local', nics: [{ network: 'default', ip: theirs.ip }] }),
      }),
    );
    expect(r).toMatchObject({ code: 'CONFLICT', message: `ip:${theirs.ip} is taken` });
    expect((await bob.instances.list.query({ project: 'beta' })).map((i) => i.name)).not.toContain(
      'thief',
    );
  });

  it('settles a create whose answer never came: adopted once its VM shows, else given back', async () => {
    // As the cloud leaves a create when it stops between its record and its cluster's answer.
    const [alpha] = await h.sql<
      { id: string }[]
    >`SELECT id FROM cloud.projects WHERE name = 'alpha'`;
    const [local] = await h.sql<
      { id: string }[]
    >`SELECT id FROM cloud.clusters WHERE name = 'local'`;
    const pending = async (name: string, age: string) => {
      await h.sql`
        INSERT INTO cloud.instances (project_id, name, cluster_id, vm_name, vcpus, memory_mib,
                                     disk_gib, ips, image, created_at)
        VALUES (${alpha!.id}, ${name}, ${local!.id}, ${`alpha.${name}`}, 1, 64, 0, 0, 'base',
                now() - ${age}::interval)`;
    };
    await pending('late', '1 second');
    await pending('never', '11 minutes');
    expect((await ann.instances.get.query({ project: 'alpha', name: 'late' })).state).toBe(
      'pending',
    );
    // Nothing to decommission yet: its delete waits for its VM.
    const early = await refused(ann.instances.delete.mutate({ project: 'alpha', name: 'late' }));
    expect(early.code).toBe('PRECONDITION_FAILED');
    expect(early.message).toContain('pending');

    // The create that was under way lands in the cluster: the cloud adopts it.
    await settle(
      h,
      (await h.api.vms.create({ name: 'alpha.late', vcpus: 1, memoryMiB: 64 })).operation,
    );
    let states: string[] = [];
    for (let i = 0; i < 100; i++) {
      const listed = await ann.instances.list.query({ project: 'alpha' });
      states = listed
        .filter((x) => ['late', 'never'].includes(x.name))
        .map((x) => `${x.name}:${x.state}`);
      if (states.join() === 'late:running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // late is the project's; never (no VM, no workflow making one, past the grace) went back.
    expect(states).toEqual(['late:running']);
    const events = await ann.projects.events.query({ project: 'alpha', limit: 5 });
    expect(events.find((e) => e.target === 'never')).toMatchObject({
      action: 'instances.lost',
      detail: { reason: 'its cluster never made VM alpha.never (its create was not taken)' },
    });
    await settle(
      h,
      (await ann.instances.delete.mutate({ project: 'alpha', name: 'late' })).operation!,
    );
  });

  it('gives back the share of an instance whose VM its cluster no longer has', async () => {
    await running(bob, 'beta', instance('gone', { cluster: 'far' }));
    const before = (await bob.quotas.get.query({ project: 'beta' })).usage.instances;
    // Removed under the cloud, by the cluster's operator (as a failed create is undone there).
    await settle(remote, (await remote.api.vms.decommission({ name: 'beta.gone' })).operation);
    let state = '';
    for (let i = 0; i < 100 && state !== 'gone'; i++) {
      state = await bob.instances.get.query({ project: 'beta', name: 'gone' }).then(
        (v) => v.state,
        (err: unknown) => (errorCode(err) === 'NOT_FOUND' ? 'gone' : ''),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('gone');
    expect((await bob.quotas.get.query({ project: 'beta' })).usage.instances).toBe(before - 1);
    const [lost] = await bob.projects.events.query({ project: 'beta', limit: 1 });
    expect(lost).toMatchObject({
      action: 'instances.lost',
      target: 'gone',
      user: null,
      detail: { reason: 'its cluster has no VM beta.gone any more' },
    });
    // The others were left alone.
    expect((await bob.instances.list.query({ project: 'beta' })).map((i) => i.name)).toEqual([
      'web-1',
      'web-2',
    ]);
  });

  it('shows a silent cluster’s instances as unknown, not gone, and keeps serving the other', async () => {
    await remote.close();
    remoteClosed = true;
    const listed = await ann.instances.list.query({ project: 'alpha' });
    expect(listed.map((i) => [i.name, i.cluster, i.state])).toEqual([
      ['web-1', 'local', 'running'],
      ['web-2', 'far', 'unknown'],
    ]);
    expect((await ann.instances.get.query({ project: 'alpha', name: 'web-2' })).state).toBe(
      'unknown',
    );
    // New instances go where an answer comes from.
    expect(await running(ann, 'alpha', instance('web-3'))).toMatchObject({
      cluster: 'local',
      state: 'running',
    });
    // Its instances are still recorded there: the cluster cannot go, nor the project.
    expect((await refused(admin.clusters.remove.mutate({ name: 'far' }))).code).toBe(
      'PRECONDITION_FAILED',
    );
    expect((await refused(admin.projects.delete.mutate({ project: 'alpha' }))).code).toBe(
      'PRECONDITION_FAILED',
    );
  });
});
