import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { localCloud } from '../../services/clouds/index.ts';
import type { CloudDriver } from '../../services/clouds/driver.ts';
import type { Desired } from '../../services/plan.ts';
import {
  ownCloud,
  reconcileStep,
  type Member,
  type ServiceSpec,
} from '../../services/reconcile-step.ts';
import { shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * One reconcile of a service at a time, carried out on a real cloud through the local
 * driver, stepped until the service is as declared: the instance count follows the replicas,
 * a rollout keeps the replicas running, and what the quota refuses is said.
 */
describe('a service’s reconcile, step by step, on a real cloud', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  let cloud: CloudDriver;
  let members: Member[] = [];

  const spec = (desired: Partial<Desired>, memoryMiB = 64): ServiceSpec => ({
    project: 'shop',
    name: 'web',
    template: { vcpus: 1, memoryMiB, image: 'base', nics: [{ network: 'default' }] },
    desired: {
      replicas: 0,
      revision: `m${memoryMiB}`,
      rollout: { maxUnavailable: 0, maxSurge: 1 },
      unknownGraceMs: 60_000,
      unhealthyAfter: 3,
      ...desired,
    },
  });

  /** The service's instances and their states, as the cloud tells them now. */
  const states = async () =>
    (await cloud.instances('shop', 'web-')).map((i) => `${i.name}:${i.state}`);

  /**
   * Steps until a step changes nothing and `count` instances (the replicas) all run; `watch`
   * sees the cloud after each step. Answers the refusals of the last step.
   */
  async function settleService(
    s: ServiceSpec,
    watch?: (running: number) => void,
    count = s.desired.replicas,
  ) {
    for (let i = 0; i < 200; i++) {
      const out = await reconcileStep(ownCloud(cloud, 'shop'), s, members, new Date());
      members = out.members;
      const now = await cloud.instances('shop', 'web-');
      watch?.(now.filter((x) => x.state === 'running').length);
      if (out.settled && now.length === count && now.every((x) => x.state === 'running')) {
        return out.refused;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`the service never settled: ${(await states()).join(' ')}`);
  }

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-step-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'step-host', { cpus: 32, memoryMiB: 32768 });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    const token = await shopWithMember(admin, 'svc');
    cloud = localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${token}`)));
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await image?.remove();
  });

  it('follows the replicas: 0, 5, 2, 0', async () => {
    await settleService(spec({ replicas: 5 }));
    expect(await states()).toEqual([0, 1, 2, 3, 4].map((n) => `web-${n}:running`));
    await settleService(spec({ replicas: 2 }));
    // The newest went.
    expect(await states()).toEqual(['web-0:running', 'web-1:running']);
    await settleService(spec({ replicas: 0 }));
    expect(await states()).toEqual([]);
    expect(members).toEqual([]);
  });

  it('rolls a template forward with the replicas running at every step', async () => {
    await settleService(spec({ replicas: 3 }));
    const seen: number[] = [];
    await settleService(spec({ replicas: 3 }, 96), (running) => seen.push(running));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(3);
    expect(members.map((m) => m.revision)).toEqual(['m96', 'm96', 'm96']);
    const listed = await cloud.instances('shop', 'web-');
    expect(listed.map((i) => i.memoryMiB)).toEqual([96, 96, 96]);
    await settleService(spec({ replicas: 0 }, 96));
  });

  it('makes what the quota allows, says why not the rest, and leaves alone what it did not make', async () => {
    await admin.quotas.set.mutate({ project: 'shop', instances: 3 });
    const refused = await settleService(spec({ replicas: 5 }), undefined, 3);
    expect(await states()).toHaveLength(3);
    expect(refused).toEqual([
      '2 of 2 not made: project shop is over its instances quota: limit 3, in use 3, asked 1',
    ]);
    await admin.quotas.set.mutate({ project: 'shop', instances: null });
    await settleService(spec({ replicas: 0 }));

    // An instance of a like name the service did not make is not the service's: left alone.
    await cloud.create({ ...spec({}).template, project: 'shop', name: 'web-7' });
    members = [];
    const out = await reconcileStep(
      ownCloud(cloud, 'shop'),
      spec({ replicas: 0 }),
      members,
      new Date(),
    );
    expect(out.plan).toMatchObject({ create: [], delete: [] });
    expect(await states()).toEqual([expect.stringMatching(/^web-7:/)]);
    await cloud.delete('shop', 'web-7');
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
  });

  it('never takes or deletes another’s instance of its names, nor one made again under them', async () => {
    // Someone's own web-0 and web-1: the service names its instances clear of them.
    // (Once the cluster has let the names go: the last test's VMs of those names.)
    const madeBySomeone = (name: string) =>
      until(`${name} made by someone`, () =>
        cloud.create({ ...spec({}).template, project: 'shop', name }).then(
          () => true,
          () => false,
        ),
      );
    await madeBySomeone('web-0');
    await madeBySomeone('web-1');
    members = [];
    await settleService(spec({ replicas: 2 }), undefined, 4);
    expect(members.map((m) => m.name)).toEqual(['web-2', 'web-3']);
    expect(members.every((m) => m.instanceId)).toBe(true);

    // web-2 goes behind the service's back and someone makes a web-2 of their own: that one
    // is not the service's. It is neither counted nor deleted; the service makes another.
    await cloud.delete('shop', 'web-2');
    await madeBySomeone('web-2');
    await settleService(spec({ replicas: 2 }), undefined, 5);
    expect(members.map((m) => m.name)).toEqual(['web-3', 'web-4']);
    await settleService(spec({ replicas: 0 }), undefined, 3);
    expect(await states()).toEqual([
      expect.stringMatching(/^web-0:/),
      expect.stringMatching(/^web-1:/),
      expect.stringMatching(/^web-2:/),
    ]);
    for (const n of ['web-0', 'web-1', 'web-2']) await cloud.delete('shop', n);
  });

  it('plans each placement on its own, and moves off a placement no longer declared in turn', async () => {
    const placed = (placements: ServiceSpec['placements'], replicas: number) => ({
      ...spec({ replicas }),
      placements,
    });
    members = [];
    await settleService(
      placed(
        [
          { cluster: 'local', replicas: 2 },
          { region: 'default', replicas: 1 },
        ],
        3,
      ),
    );
    expect(members.map((m) => [m.name, m.placement])).toEqual([
      ['web-0', 'cluster:local'],
      ['web-1', 'cluster:local'],
      ['web-2', 'region:default'],
    ]);
    // The region's placement goes: its member goes only once its replacement runs.
    const seen: number[] = [];
    await settleService(placed([{ cluster: 'local', replicas: 3 }], 3), (r) => seen.push(r));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(3);
    expect(members.map((m) => m.placement)).toEqual([
      'cluster:local',
      'cluster:local',
      'cluster:local',
    ]);
    await settleService(placed([{ cluster: 'local', replicas: 0 }], 0));
    expect(await states()).toEqual([]);
  });
});
