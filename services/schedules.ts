import { createHash } from 'node:crypto';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleHandle,
} from '@temporalio/client';
import { inBatches } from '../common/batches.ts';

/** The task queue the service layer's worker serves. */
export const SERVICES_TASK_QUEUE = 'vagoth-services';

/** The workflow each schedule starts (services/workflows.ts). */
export const RECONCILE_WORKFLOW = 'serviceReconcile';

/** A service's schedule id, as the Temporal UI lists it. */
export const scheduleId = (project: string, name: string) => `service:${project}/${name}`;

/**
 * Every `everySeconds`, at an offset of the service's own within the period: interval
 * schedules fire on multiples of their period since 1970, so without one every service of a
 * period would fire in the same second, and the server turns a burst of 100 starts into runs
 * over some 15 s on 2 cores (bench/services.ts) where spread ones take half a second each.
 */
function specOf(s: { id: string; everySeconds: number }) {
  const offset = createHash('sha256').update(s.id).digest().readUInt32BE(0) % s.everySeconds;
  return { intervals: [{ every: `${s.everySeconds}s`, offset: `${offset}s` }] };
}

/**
 * Makes the service's schedule (or brings the one there up to date): its reconcile every
 * `everySeconds`, never two at once (a tick while one runs is skipped), and runs one at once.
 */
export async function ensureSchedule(
  client: Client,
  s: { id: string; project: string; name: string; everySeconds: number; paused: boolean },
): Promise<void> {
  const id = scheduleId(s.project, s.name);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: specOf(s),
      action: {
        type: 'startWorkflow',
        workflowType: RECONCILE_WORKFLOW,
        workflowId: `reconcile:${s.project}/${s.name}`,
        args: [s.id],
        taskQueue: SERVICES_TASK_QUEUE,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      state: { paused: s.paused, note: s.paused ? 'paused' : undefined },
    });
  } catch (err) {
    if ((err as Error).name !== 'ScheduleAlreadyRunning') throw err;
    await bringUpToDate(client.schedule.getHandle(id), s);
  }
  if (!s.paused) await triggerSchedule(client, s.project, s.name);
}

/**
 * A schedule already there brought up to date: at the service's period and offset, and
 * reconciling this service (one left by a service of that name that went must not point at
 * it), with today's workflow.
 */
async function bringUpToDate(handle: ScheduleHandle, s: { id: string; everySeconds: number }) {
  await handle.update((was) => ({
    ...was,
    spec: specOf(s),
    action: {
      ...was.action,
      workflowType: RECONCILE_WORKFLOW,
      args: [s.id],
    } as typeof was.action,
  }));
}

/** Runs the service's reconcile now (after a change), or right after the one running. */
export async function triggerSchedule(client: Client, project: string, name: string) {
  await client.schedule
    .getHandle(scheduleId(project, name))
    .trigger(ScheduleOverlapPolicy.BUFFER_ONE);
}

/** Removes the service's schedule; one already gone is no error. */
export async function deleteSchedule(client: Client, project: string, name: string) {
  try {
    await client.schedule.getHandle(scheduleId(project, name)).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/**
 * Makes again the schedules of services that lost theirs (removed in the Temporal UI, a
 * namespace reset): a service without one would never be reconciled, nor its delete carried
 * out; and moves a schedule that starts an older reconcile workflow to today's (and the
 * service's offset). Answers the
 * services whose schedule was made again, and those whose schedule was moved.
 */
export async function restoreSchedules(
  client: Client,
  services: readonly Parameters<typeof ensureSchedule>[1][],
): Promise<{ restored: string[]; moved: string[] }> {
  const restored: string[] = [];
  const moved: string[] = [];
  await inBatches(services, 16, async (s) => {
    const handle = client.schedule.getHandle(scheduleId(s.project, s.name));
    let action;
    try {
      action = (await handle.describe()).action;
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await ensureSchedule(client, s);
      restored.push(`${s.project}/${s.name}`);
      return;
    }
    if (action.type === 'startWorkflow' && action.workflowType !== RECONCILE_WORKFLOW) {
      await bringUpToDate(handle, s);
      moved.push(`${s.project}/${s.name}`);
    }
  });
  return { restored, moved };
}
