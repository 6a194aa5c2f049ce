import { createToken, listTokens, revokeToken } from '../../registry/tokens.ts';
import { tokenCreateInput, tokenListInput, tokenRevokeInput } from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

/** The tokens that open the API; only an admin's token may call these (api/authorize.ts). */
export const tokensRouter = router({
  /** Answers the token's secret: the only time it is shown. */
  create: procedure.input(tokenCreateInput).mutation(({ ctx, input }) =>
    createToken(ctx.sql, {
      name: input.name,
      role: input.role,
      createdBy: ctx.principal.tokenId,
      expiresAt:
        input.expiresInSeconds === undefined
          ? null
          : new Date(Date.now() + input.expiresInSeconds * 1000),
    }),
  ),

  list: procedure.input(tokenListInput).query(({ ctx, input }) => listTokens(ctx.sql, input)),

  /** Refused at once by this API process; by others within their cache's lifetime. */
  revoke: procedure.input(tokenRevokeInput).mutation(async ({ ctx, input }) => {
    const revoked = await revokeToken(ctx.sql, input.id);
    ctx.tokens.forget(revoked.id);
    return revoked;
  }),
});
