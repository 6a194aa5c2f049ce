import { describeOperation } from '../operations.ts';
import { operationGetInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

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
});
