import { retryUpdate } from '../../workflows/index.ts';
import { describeOperation } from '../operations.ts';
import { byName, operationGetInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';
import { operate } from './vms.ts';

export const operationsRouter = router({
  get: procedure
    .input(operationGetInput)
    .query(({ ctx, input }) =>
      describeOperation(
        ctx.temporal,
        ctx.temporalUiUrl,
        ctx.namespace,
        input.id,
        input.runId,
        input.updateId,
      ),
    ),

  /**
   * Runs the VM's last operation again, with its input, when it failed (the VM workflow's
   * `retry` Update, which the Temporal UI can send too): a failed create kept `failed` is
   * placed and booted again. Answers the new operation once accepted; a retry the VM's state
   * does not allow, or with nothing failed to retry, is PRECONDITION_FAILED with the reason.
   */
  retry: procedure
    .input(byName)
    .mutation(({ ctx, input }) => operate(ctx, input.name, retryUpdate, [])),
});
