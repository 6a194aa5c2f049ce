import { workflowInfo } from '@temporalio/workflow';
import type { OperationRef } from '../activities/index.ts';
import { cleanup, steps } from './proxies.ts';

export interface DecommissionVmInput {
  vmId: string;
  name: string;
}

/** Stops and undefines the domain, then removes the VM, which releases its keys and capacity. */
export async function decommissionVm({ vmId }: DecommissionVmInput): Promise<void> {
  const info = workflowInfo();
  const operation: OperationRef = {
    kind: 'decommission',
    workflowId: info.workflowId,
    runId: info.runId,
  };
  // Compare-and-set: only a settled VM can be decommissioned, so this never races a create.
  await steps.transitionVm(vmId, ['running', 'failed'], 'decommissioning', { operation });
  await cleanup.stopDomain(vmId);
  await cleanup.undefineDomain(vmId);
  await cleanup.deleteVm(vmId);
}
