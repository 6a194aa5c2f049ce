import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { TtlCache } from '../../common/ttl-cache.ts';
import type { ServicesDeps } from '../../services/api/context.ts';
import { createServicesCaller } from '../../services/api/router.ts';
import { localCloud } from '../../services/clouds/index.ts';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { servicesWorkerFor, shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { pausableProxy, type PausableProxy } from '../support/pausable-proxy.ts';

/**
 * A service spread over two clusters of one cloud: this deployment's (`local`) and another
 * vagoth stack (`far`), reached through a proxy the test can pause. While `far` does not
 * answer, its instances are `unknown`; after the service's grace they are replaced on `local`,
 * and once `far` answers again the ones it held are deleted there.
 */
describe('a service over two clusters, one of which stops answering', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let remote: Harness;
  let proxy: PausableProxy;
  let h: Harness;
  let admin: CloudClient;
  let worker: { shutdown(): Promise<void> };
  let deps: ServicesDeps;
  let token: string;

  const GRACE_SECONDS = 5;
  const svc = () => createServicesCaller({ ...deps, authorization: `Bearer ${token}` });
  const instances = () => admin.instances.list.query({ project: 'shop', prefix: 'web-' });
  const service = () => svc().services.get({ project: 'shop', name: 'web' });
  const show = async () =>
    JSON.stringify({
      instances: (await instances()).map((i) => [i.name, i.cluster, i.state]),
      status: (await service()).status,
    });
  /** The far cluster's own VMs of these instances (`<project>.<name>` there). */
  const farVms = async (names: readonly string[]) =>
    remote.api.vms.list({ names: names.map((n) => `shop.${n}`) });

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-clusters-');
    remote = await startHarness({ http: true, images: image.images('store-far') });
    const remoteApi = new URL(remote.apiUrl);
    proxy = await pausableProxy({ host: remoteApi.hostname, port: Number(remoteApi.port) });
    const farUrl = `${proxy.origin}/trpc`;
    h = await startHarness({
      images: image.images('store-local'),
      cloud: { clusterUrls: [farUrl], clusterTimeoutMs: 1_000, reconcileMs: 500 },
    });
    // Equal hosts: the cloud, placing by free memory, alternates between the clusters.
    const size = { cpus: 32, memoryMiB: 32 * 1024 };
    await image.addHostWithImage(h, 'svc-local', size);
    await image.addHostWithImage(remote, 'svc-far', size);

    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    await admin.clusters.register.mutate({
      name: 'far',
      driver: 'vagoth',
      url: farUrl,
      token: remote.token,
    });
    token = await shopWithMember(admin, 'ann');
    await admin.images.publish.mutate({ cluster: 'far', image: 'base' });
    await admin.networks.grant.mutate({ cluster: 'far', network: 'default' });
    deps = {
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: (t) =>
        localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${t}`))),
      callers: new TtlCache(5_000),
    };
    worker = await servicesWorkerFor(h);
  }, 120_000);

  afterAll(async () => {
    proxy?.resume();
    await worker?.shutdown();
    await h?.close();
    await proxy?.close();
    await remote?.close();
    await image?.remove();
  });

  it('replaces the silent cluster’s instances after the grace, and deletes them once it answers', async () => {
    await svc().services.create({
      project: 'shop',
      name: 'web',
      template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
      replicas: 4,
      everySeconds: 5,
      unknownGraceSeconds: GRACE_SECONDS,
    });
    await until(
      '4 running over both clusters',
      async () => (await instances()).filter((i) => i.state === 'running').length === 4,
      show,
    );
    const before = await instances();
    const far = before.filter((i) => i.cluster === 'far').map((i) => i.name);
    const local = before.filter((i) => i.cluster === 'local').map((i) => i.name);
    expect(far.length).toBeGreaterThan(0);
    expect(local.length).toBeGreaterThan(0);
    expect(far.length + local.length).toBe(4);
    expect((await farVms(far)).map((v) => v.state)).toEqual(far.map(() => 'running'));

    // The far cluster's API stops answering: its instances are `unknown`, not gone.
    proxy.pause();
    await until(
      'the far instances unknown to the service',
      async () => {
        const members = (await service()).members.filter((m) => far.includes(m.name));
        return members.length === far.length && members.every((m) => m.unknownSince);
      },
      show,
    );
    const since = Math.max(
      ...(await service()).members
        .filter((m) => far.includes(m.name))
        .map((m) => m.unknownSince!.getTime()),
    );
    expect((await instances()).filter((i) => far.includes(i.name)).map((i) => i.state)).toEqual(
      far.map(() => 'unknown'),
    );

    // Within the grace nothing is replaced (nor marked to go).
    while (Date.now() < since + (GRACE_SECONDS - 1) * 1000) {
      const { members } = await service();
      expect(members.map((m) => m.name).sort()).toEqual([...far, ...local].sort());
      expect(members.filter((m) => m.retiring)).toEqual([]);
      await new Promise((r) => setTimeout(r, 250));
    }

    // After it, replacements run on `local`; the far ones stay listed, their delete waiting.
    await until(
      '4 running on local',
      async () =>
        (await instances()).filter((i) => i.cluster === 'local' && i.state === 'running').length ===
        4,
      show,
    );
    const during = await instances();
    expect(during.filter((i) => far.includes(i.name)).map((i) => i.state)).toEqual(
      far.map(() => 'unknown'),
    );
    expect(during).toHaveLength(4 + far.length);
    const replacements = during
      .filter((i) => i.cluster === 'local' && !local.includes(i.name))
      .map((i) => i.name);
    expect(replacements).toHaveLength(far.length);
    await until(
      'the status to say the far deletes wait',
      async () => {
        const { status } = await service();
        return (
          status.running === 4 &&
          far.every((n) => status.refused?.some((r) => r.startsWith(`${n} not deleted yet`)))
        );
      },
      show,
    );
    const waiting = await service();
    expect(waiting.status).toMatchObject({ desired: 4, running: 4, settled: false });
    expect(
      waiting.members
        .filter((m) => m.retiring)
        .map((m) => m.name)
        .sort(),
    ).toEqual([...far].sort());
    for (const m of waiting.members.filter((x) => x.retiring)) {
      expect(m.retiring).toMatch(/its cluster has not answered for \d+ s/);
    }
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(
      4 + far.length,
    );

    // The far cluster answers again: the surplus there is deleted, whatever its state.
    proxy.resume();
    await until(
      'only the 4 local instances left',
      async () => {
        const now = await instances();
        return now.length === 4 && now.every((i) => i.cluster === 'local' && i.state === 'running');
      },
      show,
    );
    await until(
      'the far VMs decommissioned and gone from their cluster',
      async () => (await farVms(far)).length === 0,
      async () => JSON.stringify((await farVms(far)).map((v) => [v.name, v.state])),
    );
    await until('the service settled', async () => (await service()).status.settled === true, show);
    const settled = await service();
    expect(settled.members.map((m) => m.name).sort()).toEqual([...local, ...replacements].sort());
    expect(settled.members.filter((m) => m.retiring || m.unknownSince)).toEqual([]);
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(4);
    const events = await svc().services.events({ project: 'shop', name: 'web', limit: 50 });
    const did = events
      .filter((e) => e.action === 'services.reconcile')
      .map((e) => e.detail as { created: string[]; deleted: string[] });
    expect(did.flatMap((d) => d.created).sort()).toEqual(
      [...local, ...far, ...replacements].sort(),
    );
    expect(did.flatMap((d) => d.deleted).sort()).toEqual([...far].sort());

    // Deleted: nothing left of it, in either cluster.
    await svc().services.delete({ project: 'shop', name: 'web' });
    await until(
      'the service gone',
      () =>
        service().then(
          () => false,
          (err: unknown) =>
            errorCode(err) === 'NOT_FOUND' || (err as { code?: string }).code === 'NOT_FOUND',
        ),
      show,
    );
    expect(await instances()).toEqual([]);
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
    const all = [...local, ...far, ...replacements];
    const vmsLeft = async () => [
      ...(await farVms(all)),
      ...(await h.api.vms.list({ names: all.map((n) => `shop.${n}`) })),
    ];
    await until(
      'no VM of the service left in either cluster',
      async () => (await vmsLeft()).length === 0,
      async () => JSON.stringify((await vmsLeft()).map((v) => [v.name, v.state])),
    );
  }, 240_000);

  it('keeps a service spread over clusters one to a cluster, and says why a third has none', async () => {
    await svc().services.create({
      project: 'shop',
      name: 'db',
      template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
      replicas: 2,
      spread: 'cluster',
      everySeconds: 5,
    });
    const dbs = () => admin.instances.list.query({ project: 'shop', prefix: 'db-' });
    const said = async () =>
      JSON.stringify((await svc().services.get({ project: 'shop', name: 'db' })).status);
    await until(
      'two running',
      async () => (await dbs()).filter((i) => i.state === 'running').length === 2,
      said,
    );
    expect((await dbs()).map((i) => i.cluster).sort()).toEqual(['far', 'local']);

    await svc().services.update({ project: 'shop', name: 'db', replicas: 3 });
    await until(
      'the third refused: both clusters hold one',
      async () => /far: excluded by the request; local: excluded by the request/.test(await said()),
      said,
    );
    expect(await dbs()).toHaveLength(2);

    await svc().services.delete({ project: 'shop', name: 'db' });
    await until('db gone', async () => (await dbs()).length === 0, said);
  }, 120_000);
});
