import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

/** The task queue the service layer's worker serves. */
export const SERVICES_TASK_QUEUE = 'vagoth-services';

/** A service's schedule id, as the Temporal UI lists it. */
export const scheduleId = (project: string, name: string) => `service:${project}/${name}`;

/**
 * Makes the service's schedule (or leaves the one there): its reconcile every `everySeconds`,
 * never two at once (a tick while one runs is skipped), and runs one at once.
 */
export async function ensureSchedule(
  client: Client,
  s: { id: string; project: string; name: string; everySeconds: number; paused: boolean },
): Promise<void> {
  const id = scheduleId(s.project, s.name);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { intervals: [{ every: `${s.everySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconcileServiceWorkflow',
        workflowId: `reconcile:${s.project}/${s.name}`,
        args: [s.id],
        taskQueue: SERVICES_TASK_QUEUE,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      state: { paused: s.paused, note: s.paused ? 'paused' : undefined },
    });
  } catch (err) {
    if ((err as Error).name !== 'ScheduleAlreadyRunning') throw err;
    // One left by a service of that name that went: it must reconcile this one.
    await client.schedule.getHandle(id).update((was) => ({
      ...was,
      action: { ...was.action, args: [s.id] } as typeof was.action,
    }));
  }
  if (!s.paused) await triggerSchedule(client, s.project, s.name);
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
