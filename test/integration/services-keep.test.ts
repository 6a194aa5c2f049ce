import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { TtlCache } from '../../common/ttl-cache.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { REPORT_ONLY } from '../../monitor/reconcile.ts';
import type { ServicesDeps } from '../../services/api/context.ts';
import { createServicesCaller } from '../../services/api/router.ts';
import { localCloud } from '../../services/clouds/index.ts';
import { monitorCluster } from '../../workflows/index.ts';
import { servicesWorkerFor, shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * A service kept as declared by its schedule, on a real cloud, cluster and Temporal: spread
 * over hosts, replaced when its domain is destroyed behind vagoth's back, and replaced when it
 * fails its health check (probed on loopback addresses only: the network given to the
 * project is 127.77.0.0/24, and the test listens on each instance's address there).
 */
describe('a service kept as declared', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  let worker: { shutdown(): Promise<void> };
  let services: ReturnType<typeof createServicesCaller>['services'];
  const uris = new Map<string, string>();
  const back: LibvirtDriver[] = [];

  async function addHost(name: string) {
    const uri = await h.simulatedHost(name, { cpus: 4, memoryMiB: 1024 });
    uris.set(name, uri);
    await h.api.hosts.register({ name, driver: 'libvirt', uri, diskGiB: 100 });
  }

  /** The service's instances as the cloud lists them, with their hosts as the cluster says. */
  async function instances(prefix: string) {
    const listed = await admin.instances.list.query({ project: 'shop', prefix });
    return Promise.all(
      listed.map(async (i) => {
        const vm = await h.api.vms.get({ name: `shop.${i.name}` }).catch(() => null);
        return { name: i.name, state: i.state, host: vm?.host ?? null, ips: i.addresses };
      }),
    );
  }
  const running = async (prefix: string) =>
    (await instances(prefix)).filter((i) => i.state === 'running');
  const said = async (name: string) =>
    JSON.stringify((await services.get({ project: 'shop', name })).status);

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-keep-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'keep-0', { cpus: 4, memoryMiB: 1024 });
    uris.set('keep-0', (await h.api.hosts.get({ name: 'keep-0' })).uri);
    for (const n of [1, 2, 3, 4]) await addHost(`keep-${n}`);
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    const token = await shopWithMember(admin, 'ann');
    // A network in the loopback range, for health checks the test can answer.
    await h.api.networks.create({ name: 'lo', cidr: '127.77.0.0/24' });
    await admin.networks.grant.mutate({ cluster: 'local', network: 'lo', project: 'shop' });
    const deps: ServicesDeps = {
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: (t) =>
        localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${t}`))),
      callers: new TtlCache(5_000),
    };
    services = createServicesCaller({ ...deps, authorization: `Bearer ${token}` }).services;
    worker = await servicesWorkerFor(h);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(back.map((d) => d.close()));
    await worker?.shutdown();
    await h?.close();
    await image?.remove();
  });

  const template = { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] };

  it('puts no two instances on one host, says why a sixth has none, and places it on a new one', async () => {
    await services.create({
      project: 'shop',
      name: 'web',
      template,
      replicas: 5,
      spread: 'host',
      everySeconds: 5,
    });
    await until(
      'five running',
      async () => (await running('web-')).length === 5,
      async () => said('web'),
    );
    const five = await running('web-');
    expect(new Set(five.map((i) => i.host)).size).toBe(5);

    await services.update({ project: 'shop', name: 'web', replicas: 6 });
    await until(
      'the sixth refused for want of a host',
      async () =>
        /anti-affinity group shop\.web already on this host \(5 hosts\)/.test(await said('web')),
      async () => said('web'),
    );
    const status = (await services.get({ project: 'shop', name: 'web' })).status as {
      refused: string[];
      running: number;
    };
    expect(status.refused).toEqual([
      expect.stringMatching(/^1 of 1 not made: no cluster can take it \(local: no host there/),
    ]);
    // The five keep running where they were.
    expect((await running('web-')).map((i) => [i.name, i.host]).sort()).toEqual(
      five.map((i) => [i.name, i.host]).sort(),
    );

    await addHost('keep-5');
    await until(
      'the sixth running on the new host',
      async () => (await running('web-')).length === 6,
      async () => said('web'),
    );
    const six = await running('web-');
    expect(new Set(six.map((i) => i.host)).size).toBe(6);
    expect(six.find((i) => !five.some((f) => f.name === i.name))?.host).toBe('keep-5');

    await services.delete({ project: 'shop', name: 'web' });
    await until('web gone', async () => (await instances('web-')).length === 0);
  }, 180_000);

  it('replaces an instance whose domain was destroyed behind its back within two periods', async () => {
    await services.create({ project: 'shop', name: 'db', template, replicas: 2, everySeconds: 5 });
    await until('two running', async () => (await running('db-')).length === 2);
    const [victim, other] = await running('db-');
    const usage = async () => (await admin.quotas.get.query({ project: 'shop' })).usage;
    const before = await usage();

    // Its domain goes behind vagoth's back; the cluster's monitor (as an operator sets it,
    // adopting what its hosts report) records it stopped.
    const hv = new LibvirtDriver({ uri: uris.get(victim!.host!)! });
    back.push(hv);
    await hv.stop(`shop.${victim!.name}`);
    await h.temporal.workflow.execute(monitorCluster, {
      args: [{ hosts: [victim!.host!], policies: { ...REPORT_ONLY, drifted: 'adopt' } }],
      taskQueue: h.taskQueue,
      workflowId: `monitor-${randomUUID()}`,
    });
    const seenAt = Date.now();
    await until(
      'the stopped one replaced',
      async () => {
        const now = await instances('db-');
        return !now.some((i) => i.name === victim!.name) && now.length === 2;
      },
      async () => said('db'),
    );
    // Within two periods of 5 s (the replacement may still be starting).
    expect(Date.now() - seenAt).toBeLessThan(2 * 5_000 + 2_000);
    await until('two running again', async () => (await running('db-')).length === 2);
    const now = await running('db-');
    expect(now.map((i) => i.name)).toContain(other!.name);
    // Its name is free in the cluster, and the project's usage is what it was.
    await until(
      'its VM gone from the cluster',
      async () =>
        await h.api.vms.get({ name: `shop.${victim!.name}` }).then(
          () => false,
          () => true,
        ),
    );
    expect(await usage()).toEqual(before);
    const events = await services.events({ project: 'shop', name: 'db' });
    expect(events.map((e) => e.detail)).toContainEqual(
      expect.objectContaining({ deleted: [victim!.name] }),
    );

    await services.delete({ project: 'shop', name: 'db' });
    await until('db gone', async () => (await instances('db-')).length === 0);
  }, 180_000);

  it('replaces an instance that fails its health check for unhealthyAfter ticks', async () => {
    const listeners = new Map<string, net.Server>();
    const silenced = new Set<string>();
    const port = 18_000 + Math.floor(Math.random() * 1000);
    /** A listener on each instance's address, but for the silenced ones. */
    const answer = async () => {
      for (const i of await instances('api-')) {
        const ip = i.ips[0]?.ip;
        if (!ip || listeners.has(ip) || silenced.has(i.name)) continue;
        const server = net.createServer((s) => s.end());
        await new Promise<void>((ok, fail) => server.listen(port, ip, ok).once('error', fail));
        listeners.set(ip, server);
      }
    };
    try {
      await services.create({
        project: 'shop',
        name: 'api',
        template: { ...template, nics: [{ network: 'lo' }] },
        replicas: 2,
        everySeconds: 5,
        health: { tcp: port },
        unhealthyAfter: 2,
      });
      await until(
        'two running and answering',
        async () => {
          await answer();
          const s = (await services.get({ project: 'shop', name: 'api' })).status as {
            running?: number;
            unhealthy?: string[];
          };
          return s.running === 2 && s.unhealthy?.length === 0;
        },
        async () => said('api'),
      );
      const [sick, well] = await running('api-');
      expect(sick!.ips[0]!.ip).toMatch(/^127\.77\.0\./);
      silenced.add(sick!.name);
      const ip = sick!.ips[0]!.ip!;
      await new Promise((r) => listeners.get(ip)!.close(r));
      listeners.delete(ip);

      await until(
        'the one that stopped answering replaced',
        async () => {
          await answer();
          const now = await running('api-');
          return now.length === 2 && !now.some((i) => i.name === sick!.name);
        },
        async () => said('api'),
      );
      expect((await running('api-')).map((i) => i.name)).toContain(well!.name);
      const events = await services.events({ project: 'shop', name: 'api' });
      expect(events.map((e) => e.detail)).toContainEqual(
        expect.objectContaining({ deleted: [sick!.name] }),
      );
    } finally {
      for (const s of listeners.values()) s.close();
    }
    await services.delete({ project: 'shop', name: 'api' });
    await until('api gone', async () => (await instances('api-')).length === 0);
  }, 180_000);
});
