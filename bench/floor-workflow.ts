// The Temporal floor for bench/lifecycle: a VM lifecycle's shape (claim by update-with-start,
// N create steps, a decommission update running M steps) whose activities do nothing. Bundled
// into the bench's own worker; like workflows/, it imports only @temporalio/workflow.
import { condition, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

export interface FloorActivities {
  noop(step: number): Promise<void>;
}

export interface FloorInput {
  createSteps: number;
  decommissionSteps: number;
}

const { noop } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });

export const floorClaimed = defineUpdate<null>('claimed');
export const floorRunning = defineUpdate<null>('running');
export const floorDecommission = defineUpdate<null>('decommission');

export async function floorLifecycle({
  createSteps,
  decommissionSteps,
}: FloorInput): Promise<void> {
  let claimed = false;
  let running = false;
  let gone = false;
  setHandler(floorClaimed, async () => {
    await condition(() => claimed);
    return null;
  });
  setHandler(floorRunning, async () => {
    await condition(() => running);
    return null;
  });
  setHandler(floorDecommission, async () => {
    await condition(() => running);
    for (let i = 0; i < decommissionSteps; i++) await noop(createSteps + i);
    gone = true;
    return null;
  });
  await noop(0);
  claimed = true;
  for (let i = 1; i < createSteps; i++) await noop(i);
  running = true;
  await condition(() => gone);
}
