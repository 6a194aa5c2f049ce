// The Temporal floor for bench/lifecycle: a VM lifecycle's shape (claim by update-with-start,
// the create's steps, a decommission update running its steps, each step a local or an
// ordinary activity as in the real run) whose activities do nothing. Bundled into the bench's
// own worker; like workflows/, it imports only @temporalio/workflow.
import {
  allHandlersFinished,
  condition,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

export interface FloorActivities {
  /** Does nothing, except record `state` (as vagoth's steps record the VM's) when given. */
  noop(step: number, state?: { id: string; state: 'running' | 'gone' }): Promise<void>;
}

/** A step's kind: `local` (a local activity, a marker in history) or `activity`. */
export type StepKind = 'local' | 'activity';

export interface FloorInput {
  createSteps: StepKind[];
  decommissionSteps: StepKind[];
}

const remote = proxyActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });
const local = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });
const step = (kinds: StepKind[], i: number, state?: 'running' | 'gone') =>
  (kinds[i] === 'local' ? local : remote).noop(
    i,
    state && { id: workflowInfo().workflowId, state },
  );

export const floorClaimed = defineUpdate<null>('claimed');
export const floorDecommission = defineUpdate<null>('decommission');

/**
 * The client's side is vagoth's API's: an update-with-start that returns once the first step
 * ran (the claim), a decommission update awaited only until accepted, and the last step of
 * each phase recording the state the bench waits for.
 */
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
  setHandler(floorDecommission, async () => {
    await condition(() => running);
    const last = decommissionSteps.length - 1;
    for (let i = 0; i <= last; i++)
      await step(decommissionSteps, i, i === last ? 'gone' : undefined);
    gone = true;
    return null;
  });
  const last = createSteps.length - 1;
  for (let i = 0; i <= last; i++) {
    await step(createSteps, i, i === last ? 'running' : undefined);
    claimed = true;
  }
  running = true;
  await condition(() => gone && allHandlersFinished());
}
