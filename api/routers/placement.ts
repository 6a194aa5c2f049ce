import { planPlacement } from '../../allocator/place.ts';
import { placementRequest } from '../../registry/allocate.ts';
import { placementSnapshot } from '../../registry/placement.ts';
import { placementExplainInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

export const placementRouter = router({
  /** Where a VM of this shape would go, and why every other host would not take it. Claims nothing. */
  explain: procedure.input(placementExplainInput).query(async ({ ctx, input }) => {
    // The allocator's own request: the same rules and the cluster's policy.
    const request = placementRequest(input, ctx.placementPolicy);
    const plan = planPlacement(await placementSnapshot(ctx.sql, request), request);
    return {
      host: plan.candidates[0] ?? null,
      candidates: plan.candidates,
      rejected: plan.rejected,
    };
  }),
});
