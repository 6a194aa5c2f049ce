// The Temporal floor for bench/services' idle tick: the reconcile workflow's shape (one local
// activity, with the same options, services/workflows.ts) whose activity does nothing but say
// it ran. Bundled into the floor's own worker; imports only @temporalio/workflow.
import { proxyLocalActivities } from '@temporalio/workflow';

export interface FloorActivities {
  /** Does nothing but record that the run `id`'s activity ran. */
  noop(id: string): Promise<null>;
}

const { noop } = proxyLocalActivities<FloorActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3 },
});

export async function floorReconcileWorkflow(id: string): Promise<null> {
  return noop(id);
}
