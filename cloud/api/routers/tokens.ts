import { seesProject } from '../../authorize.ts';
import { CloudNotFoundError, CloudPreconditionError } from '../../errors.ts';
import { findProject, memberRole } from '../../store/projects.ts';
import { createCloudToken, listCloudTokens, revokeCloudToken } from '../../store/tokens.ts';
import { getUser } from '../../store/users.ts';
import { z } from 'zod';
import { tokenCreateOut, tokenOut } from '../outputs.ts';
import { actorOf } from '../context.ts';
import { tokenCreateInput, tokenListInput, tokenRevokeInput } from '../schemas.ts';
import { USER_READ, USER_WRITE, procedure, router, routes } from '../trpc.ts';

const at = routes('tokens');

/** The earlier of two expiries (null: never). */
function earliest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

/** Cloud tokens belong to a user: one's own, or (for an admin) anyone's. */
export const tokensRouter = router({
  /**
   * Answers the token's secret: the only time it is shown. A token is never more than the one
   * that made it: one made with a narrowed token is narrowed to the same project.
   */
  create: procedure
    .meta(at(USER_WRITE, 'POST /tokens'))
    .input(tokenCreateInput)
    .output(tokenCreateOut)
    .mutation(async ({ ctx, input }) => {
      const { caller } = ctx;
      const user = await getUser(ctx.sql, input.user ?? caller.user);
      let projectId: string | null = caller.project;
      if (input.project !== undefined) {
        const project = await findProject(ctx.sql, input.project);
        if (!project || !seesProject(caller, project.id)) {
          throw new CloudNotFoundError('project', input.project);
        }
        if (!user.admin && (await memberRole(ctx.sql, project.id, user.id)) === null) {
          throw new CloudPreconditionError(`user ${user.name} is not a member of ${project.name}`);
        }
        projectId = project.id;
      }
      return createCloudToken(ctx.sql, actorOf(ctx), {
        userId: user.id,
        name: input.name,
        projectId,
        readOnly: input.readOnly || caller.readOnly,
        // One's own token expires no later than the one that made it (and is revoked with it);
        // an admin's token for another user is that user's.
        expiresAt: earliest(
          input.expiresInSeconds === undefined
            ? null
            : new Date(Date.now() + input.expiresInSeconds * 1000),
          user.id === caller.userId ? caller.expiresAt : null,
        ),
      });
    }),

  list: procedure
    .meta(at(USER_READ, 'GET /tokens'))
    .input(tokenListInput)
    .output(z.array(tokenOut))
    .query(async ({ ctx, input }) => {
      const user = await getUser(ctx.sql, input.user ?? ctx.caller.user);
      return listCloudTokens(ctx.sql, user.id, ctx.caller.project);
    }),

  /** One's own token; an admin's, anyone's. Another user's is NOT_FOUND. */
  revoke: procedure
    .meta(at(USER_WRITE, 'DELETE /tokens/{id}'))
    .input(tokenRevokeInput)
    .output(tokenOut)
    .mutation(({ ctx, input }) => {
      const { caller } = ctx;
      const owner = caller.admin && caller.project === null ? null : caller.userId;
      return revokeCloudToken(ctx.sql, actorOf(ctx), input.id, {
        owner,
        project: caller.project,
      });
    }),
});
