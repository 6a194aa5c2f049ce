// The Temporal floor of bench/services' idle tick, measured in the same process against the
// same dev server: SERVICES schedules of a workflow shaped as the reconcile (one local activity,
// the same options: bench/services-floor-workflow.ts) whose activity does nothing, served by a
// worker created as the services' own is (workers/services.ts: Worker.create's defaults) on a
// task queue of its own. A floor tick triggers every schedule at once, as the services' tick
// does, and is timed until every run's activity ran; a second floor starts the same number
// of bare workflows at once (no schedule), timed the same way.
import { fileURLToPath } from 'node:url';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { actionsTaken, runTimes, tickActions, type RunTimes } from './services-actions.ts';
import { until } from './services-runs.ts';

const TASK_QUEUE = 'bench-services-floor';
const WORKFLOW = 'floorReconcileWorkflow';

export interface FloorTick {
  /** Trigger (or start) calls made to every activity run, as the bench's clock saw it. */
  ms: number;
  /** When the calls were made (epoch ms), and each run's milestones. */
  at: number;
  timeline: RunTimes[];
}

export interface Floor {
  /** Every schedule triggered at once. */
  tick(): Promise<FloorTick>;
  /** As many bare workflows started at once. */
  starts(): Promise<FloorTick>;
  close(): Promise<void>;
}

export async function startFloor(options: {
  address: string;
  client: Client;
  count: number;
  everySeconds: number;
}): Promise<Floor> {
  const { client, count } = options;
  const ran = new Set<string>();
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: client.options.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: fileURLToPath(new URL('./services-floor-workflow.ts', import.meta.url)),
    activities: {
      noop: async (id: string) => {
        ran.add(id);
        return null;
      },
    },
  });
  const running = worker.run().finally(() => connection.close());
  const ids = Array.from({ length: count }, (_, i) => `bench-floor:${i}`);
  for (const [i, scheduleId] of ids.entries()) {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${options.everySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: WORKFLOW,
        workflowId: `floor-reconcile:${i}`,
        args: [`${i}`],
        taskQueue: TASK_QUEUE,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    });
  }

  /** Makes every run (`go`), until each one's activity ran; answers the runs' handles. */
  async function timed(go: () => Promise<unknown>) {
    ran.clear();
    const at = Date.now();
    const t0 = performance.now();
    const made = await go();
    await until(
      'every floor run ran its activity',
      async () => ran.size === count,
      async () => ran.size,
      60_000,
    );
    return { ms: performance.now() - t0, at, made };
  }

  let round = 0;
  return {
    async tick() {
      const before = await actionsTaken(client, ids);
      const since = new Date();
      const { ms, at } = await timed(() =>
        Promise.all(
          ids.map((id) => client.schedule.getHandle(id).trigger(ScheduleOverlapPolicy.BUFFER_ONE)),
        ),
      );
      const counted = await tickActions(client, before, since);
      return { ms, at, timeline: counted.timeline };
    },
    async starts() {
      round += 1;
      const { ms, at, made } = await timed(() =>
        Promise.all(
          ids.map((_, i) =>
            client.workflow.start(WORKFLOW, {
              taskQueue: TASK_QUEUE,
              workflowId: `floor-start:${round}:${i}`,
              args: [`${i}`],
            }),
          ),
        ),
      );
      const timeline: RunTimes[] = [];
      for (const handle of made as Awaited<ReturnType<Client['workflow']['start']>>[]) {
        await handle.result();
        timeline.push(runTimes((await handle.fetchHistory()).events ?? []));
      }
      return { ms, at, timeline };
    },
    async close() {
      for (const id of ids) await client.schedule.getHandle(id).delete();
      worker.shutdown();
      await running;
    },
  };
}
