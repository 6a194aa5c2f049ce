import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { TtlCache } from '../../common/ttl-cache.ts';
import { createServicesCaller } from '../../services/api/router.ts';
import type { CloudCaller } from '../../services/clouds/driver.ts';
import { localCloudFor } from '../../workers/services.ts';
import { scheduleId } from '../../services/schedules.ts';
import { errorCode } from '../support/api-client.ts';
import { shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { cloudProxy, servicesWorkerChild } from '../support/services-worker-child.ts';

const REPLICAS = 6;

/**
 * The service layer's worker in a process of its own, reaching the cloud over HTTP, killed
 * (SIGKILL: no drain) in the middle of a reconcile and started again: its reconcile is tried
 * again on the new worker (heartbeatTimeout, services/workflows.ts), and what the killed one
 * had done is found, not done twice nor left behind. The worker's calls to the cloud pass a
 * proxy that holds one chosen call, so the kill lands between two calls of a reconcile, and
 * the call held is then sent on with its answer lost.
 */
describe('the services worker SIGKILLed mid-reconcile', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  const callers = new TtlCache<CloudCaller | null>(5_000);
  let member: string;
  let proxy: Awaited<ReturnType<typeof cloudProxy>>;
  let worker: ReturnType<typeof servicesWorkerChild>;

  const as = (token: string) =>
    createServicesCaller({
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: localCloudFor(h.cloud!.deps),
      callers,
      authorization: `Bearer ${token}`,
    });
  /** The code a call is refused with (in-process or over HTTP), or `ok`. */
  const answer = (call: Promise<unknown>) =>
    call.then(
      () => 'ok',
      (err: unknown) => errorCode(err) ?? (err as { code?: string }).code,
    );
  const instances = (name: string) =>
    admin.instances.list.query({ project: 'shop', prefix: `${name}-` });
  const running = async (name: string) =>
    (await instances(name)).filter((i) => i.state === 'running').length;
  const shopVms = async () =>
    (await h.api.vms.list()).filter((v) => v.tags['vagoth.cloud/project'] === 'shop');
  const rowsOf = async (serviceId: string) => {
    const [row] = await h.sql<{ services: number; members: number; events: number }[]>`
      SELECT (SELECT count(*)::int FROM services.services WHERE id = ${serviceId}) AS services,
             (SELECT count(*)::int FROM services.members WHERE service_id = ${serviceId}) AS members,
             (SELECT count(*)::int FROM services.events WHERE service_id = ${serviceId}) AS events`;
    return row;
  };
  const seen = (name: string) => async () =>
    JSON.stringify({
      instances: (await instances(name)).map((i) => `${i.name}:${i.state}`),
      service: await as(member)
        .services.get({ project: 'shop', name })
        .then((s) => ({ status: s.status, members: s.members.map((m) => m.name) }))
        .catch((err: unknown) => String(err)),
      worker: worker.output.slice(-2000),
    });

  const declare = (name: string) =>
    as(member).services.create({
      project: 'shop',
      name,
      template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
      replicas: REPLICAS,
      everySeconds: 5,
    });

  /**
   * Waits until the service is gone, then finds nothing of it left: no instance in the cloud
   * nor VM in the cluster, no schedule, no quota used, its token revoked, no rows of it.
   */
  async function expectGoneWhole(name: string, serviceId: string, token: string) {
    await until(
      `service ${name} gone`,
      async () =>
        (await answer(as(member).services.get({ project: 'shop', name }))) === 'NOT_FOUND',
      seen(name),
    );
    expect(await instances(name)).toEqual([]);
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
    await expect(
      h.temporal.schedule.getHandle(scheduleId('shop', name)).describe(),
    ).rejects.toThrow();
    expect(await rowsOf(serviceId)).toEqual({ services: 0, members: 0, events: 0 });
    const tokens = await admin.tokens.list.query({ user: 'ann' });
    const own = tokens.filter((t) => t.name === `service-${name}`);
    expect(own).toHaveLength(1);
    expect(own[0]!.revokedAt).not.toBeNull();
    // Once the cloud's token cache forgets it, it opens nothing.
    await until(
      `service ${name}'s token refused`,
      async () =>
        (await answer(cloudClient(h.cloud!.url, token).users.me.query())) === 'UNAUTHORIZED',
    );
    // Each VM decommissioned in its cluster, none left behind.
    await until(
      `no VM of shop/${name} in the cluster`,
      async () => (await shopVms()).every((v) => !v.name.startsWith(`shop.${name}-`)),
      async () => JSON.stringify((await shopVms()).map((v) => v.name)),
    );
  }

  /** The service's id and the token it acts with, as its record holds them. */
  async function recordOf(name: string) {
    const [row] = await h.sql<{ id: string; token: string }[]>`
      SELECT id, token FROM services.services WHERE project = 'shop' AND name = ${name}`;
    return row!;
  }

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-kill-');
    h = await startHarness({ http: true, cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'kill-host', { cpus: 32, memoryMiB: 32768 });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    member = await shopWithMember(admin, 'ann');
    proxy = await cloudProxy(h.cloud!.url);
    worker = servicesWorkerChild({
      DATABASE_URL: h.databaseUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: h.namespace,
      VAGOTH_SERVICES_CLOUD_URL: proxy.url,
      VAGOTH_SERVICES_PROBE_CIDRS: '127.0.0.0/8',
      VAGOTH_LOG_LEVEL: 'ERROR',
    });
    // It migrates the service layer's records before it says it is up.
    await worker.start();
  }, 120_000);

  afterAll(async () => {
    await worker?.kill();
    await proxy?.close();
    await h?.close();
    await image?.remove();
  });

  it('deleting a service leaves no instance, schedule or quota usage behind', async () => {
    await declare('web');
    await until(
      `${REPLICAS} running`,
      async () => (await running('web')) === REPLICAS,
      seen('web'),
    );
    const { id, token } = await recordOf('web');

    // Two deletes go through; the third is held, and the worker killed while it waits.
    const deletes = proxy.calls('instances.delete');
    const held = proxy.hold('instances.delete', 2);
    expect(await as(member).services.delete({ project: 'shop', name: 'web' })).toMatchObject({
      deleting: true,
    });
    const call = await held;
    await worker.kill('SIGKILL');
    expect(proxy.calls('instances.delete') - deletes).toBe(3);

    // Killed halfway: the service is still recorded, deleting, and some instances remain.
    const half = await as(member).services.get({ project: 'shop', name: 'web' });
    expect(half.deletingAt).not.toBeNull();
    expect(half.members).toHaveLength(REPLICAS);
    expect(await instances('web')).toHaveLength(REPLICAS - 2);
    // The held delete reaches the cloud after all; the worker that asked never hears.
    expect(await call.forward()).toBe(200);
    expect(await instances('web')).toHaveLength(REPLICAS - 3);

    await worker.start();
    await expectGoneWhole('web', id, token);
  }, 240_000);

  it('creating a service makes exactly its replicas once, however the worker dies', async () => {
    // Three creates go through; the fourth is held, and the worker killed while it waits.
    const held = proxy.hold('instances.create', 3);
    await declare('api');
    const call = await held;
    await worker.kill('SIGKILL');

    // Each member was recorded before its create was asked: the held one is recorded too.
    const half = await as(member).services.get({ project: 'shop', name: 'api' });
    expect(half.members).toHaveLength(4);
    expect(await instances('api')).toHaveLength(3);
    // The held create is made by the cloud; its answer is lost with the worker.
    expect(await call.forward()).toBe(200);
    expect((await instances('api')).map((i) => i.name).sort()).toEqual(
      half.members.map((m) => m.name).sort(),
    );

    await worker.start();
    await until(
      `${REPLICAS} running, settled`,
      async () => {
        const s = await as(member).services.get({ project: 'shop', name: 'api' });
        return (await running('api')) === REPLICAS && s.status.settled === true;
      },
      seen('api'),
    );
    // Exactly the replicas: every instance a member, every member an instance, none twice.
    const made = (await instances('api')).map((i) => i.name).sort();
    const members = (await as(member).services.get({ project: 'shop', name: 'api' })).members;
    expect(made).toHaveLength(REPLICAS);
    expect(new Set(made).size).toBe(REPLICAS);
    expect(members.map((m) => m.name).sort()).toEqual(made);
    // The held one kept: the three made and the one whose answer was lost are all there.
    expect(made).toEqual(expect.arrayContaining(half.members.map((m) => m.name)));
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(REPLICAS);
    expect(
      (await shopVms())
        .map((v) => v.name)
        .filter((n) => n.startsWith('shop.api-'))
        .sort(),
    ).toEqual(made.map((n) => `shop.${n}`));

    // And it is deleted whole, as the first one was.
    const { id, token } = await recordOf('api');
    await as(member).services.delete({ project: 'shop', name: 'api' });
    await expectGoneWhole('api', id, token);
  }, 240_000);
});
