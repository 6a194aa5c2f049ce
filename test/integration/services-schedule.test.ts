import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureSchedule,
  scheduleId,
  RECONCILE_WORKFLOW,
  SERVICES_TASK_QUEUE,
  triggerSchedule,
} from '../../services/schedules.ts';
import {
  createService,
  getService,
  getServiceById,
  markDeleting,
  serviceEvents,
  updateService,
  type Service,
} from '../../services/store.ts';
import { servicesWorkerFor, shopWithMember, smallImage, until } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * A service kept by its Temporal Schedule: the service layer's worker runs its reconcile on
 * the schedule's ticks (and at once after a change) against a real cloud, and the instance
 * count follows what the service declares, until its delete leaves nothing behind.
 */
describe('a service kept by its schedule', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  let admin: CloudClient;
  let worker: { shutdown(): Promise<void> };
  let web: Service;

  /** The service's instances in the cloud, and their states. */
  const instances = async () =>
    (await admin.instances.list.query({ project: 'shop', prefix: 'web-' })).map(
      (i) => `${i.name}:${i.state}`,
    );

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-schedule-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'sched-host', { cpus: 32, memoryMiB: 32768 });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    // The token the service acts with: its creator's, narrowed to the project.
    const token = await shopWithMember(admin, 'ann');
    worker = await servicesWorkerFor(h);
    web = await createService(h.sql, {
      project: 'shop',
      name: 'web',
      createdBy: 'ann',
      token,
      tokenId: null,
      template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
      replicas: 3,
      spread: null,
      rollout: { maxUnavailable: 0, maxSurge: 1 },
      everySeconds: 5,
      placements: null,
      unknownGraceSeconds: 60,
      health: null,
      unhealthyAfter: 3,
    });
  }, 60_000);

  afterAll(async () => {
    await worker?.shutdown();
    await h?.close();
    await image?.remove();
  });

  it('runs its reconcile on a schedule that allows no two at once, visible in Temporal', async () => {
    await ensureSchedule(h.temporal, web);
    const described = await h.temporal.schedule.getHandle(scheduleId('shop', 'web')).describe();
    expect(described.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: RECONCILE_WORKFLOW,
      taskQueue: SERVICES_TASK_QUEUE,
    });
    expect(described.policies.overlap).toBe('SKIP');
    // Every 5 s, at an offset of its own within the period: services do not all fire at once.
    const [interval] = described.spec.intervals ?? [];
    expect(Number(interval?.every)).toBe(5_000);
    expect(Number(interval?.offset ?? 0)).toBeGreaterThanOrEqual(0);
    expect(Number(interval?.offset ?? 0)).toBeLessThan(5_000);
    await until('3 running', async () => {
      const now = await instances();
      return now.length === 3 && now.every((i) => i.endsWith(':running'));
    });
    expect(await instances()).toEqual(['web-0:running', 'web-1:running', 'web-2:running']);
  });

  it('follows a change at once: scaled to 1, the newest go', async () => {
    await updateService(h.sql, { project: 'shop', name: 'web' }, 'ann', { replicas: 1 });
    await triggerSchedule(h.temporal, 'shop', 'web');
    await until('1 left', async () => (await instances()).length === 1);
    expect(await instances()).toEqual(['web-0:running']);
    const s = await getService(h.sql, 'shop', 'web');
    await until('its status says so', async () => {
      const now = await getService(h.sql, 'shop', 'web');
      return (now.status as { running?: number }).running === 1;
    });
    const events = await serviceEvents(h.sql, s.id, 10);
    expect(events.some((e) => e.action === 'services.reconcile')).toBe(true);
  });

  it('has its schedule made again by a worker starting, once it went missing', async () => {
    await h.temporal.schedule.getHandle(scheduleId('shop', 'web')).delete();
    await updateService(h.sql, { project: 'shop', name: 'web' }, 'ann', { replicas: 2 });
    const another = await servicesWorkerFor(h);
    try {
      const described = await h.temporal.schedule.getHandle(scheduleId('shop', 'web')).describe();
      expect(described.action).toMatchObject({ workflowType: RECONCILE_WORKFLOW });
      await until('2 running', async () => (await instances()).length === 2);
    } finally {
      await another.shutdown();
    }
  });

  it('has a schedule of the older reconcile moved to today’s by a worker starting; older runs still end', async () => {
    const handle = h.temporal.schedule.getHandle(scheduleId('shop', 'web'));
    await handle.update((was) => ({
      ...was,
      action: { ...was.action, workflowType: 'reconcileServiceWorkflow' } as typeof was.action,
    }));
    // A run of the older shape (its step an ordinary activity), as one begun before the move.
    const older = await h.temporal.workflow.start('reconcileServiceWorkflow', {
      taskQueue: SERVICES_TASK_QUEUE,
      workflowId: `older-reconcile:${web.id}`,
      args: [web.id],
    });
    const another = await servicesWorkerFor(h);
    try {
      expect((await handle.describe()).action).toMatchObject({ workflowType: RECONCILE_WORKFLOW });
      await expect(older.result()).resolves.toMatchObject({ removed: false });
      const events = (await older.fetchHistory()).events ?? [];
      expect(events.some((e) => e.activityTaskCompletedEventAttributes)).toBe(true);
    } finally {
      await another.shutdown();
    }
  });

  it('deletes every instance, then the service and its schedule', async () => {
    await markDeleting(h.sql, web.id, 'ann');
    await triggerSchedule(h.temporal, 'shop', 'web');
    await until('the service gone', async () => (await getServiceById(h.sql, web.id)) === null);
    expect(await instances()).toEqual([]);
    await expect(
      h.temporal.schedule.getHandle(scheduleId('shop', 'web')).describe(),
    ).rejects.toThrow();
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
  });
});
