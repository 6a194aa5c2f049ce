import { CloudPreconditionError } from '../../errors.ts';
import { createUser, disableUser, getUser, listUsers } from '../../store/users.ts';
import { actorOf } from '../context.ts';
import { byUser, userCreateInput } from '../schemas.ts';
import { ADMIN_READ, ADMIN_WRITE, USER_READ, procedure, router } from '../trpc.ts';

export const usersRouter = router({
  create: procedure
    .meta(ADMIN_WRITE)
    .input(userCreateInput)
    .mutation(async ({ ctx, input }) => {
      return createUser(ctx.sql, actorOf(ctx), input);
    }),

  list: procedure.meta(ADMIN_READ).query(({ ctx }) => listUsers(ctx.sql)),

  /** Oneself, or (for an admin) anyone. */
  get: procedure
    .meta(USER_READ)
    .input(byUser)
    .query(({ ctx, input }) => getUser(ctx.sql, input.user)),

  /** The caller: its user, its roles in its projects, and what its token is narrowed to. */
  me: procedure.meta(USER_READ).query(async ({ ctx }) => {
    const { caller } = ctx;
    const user = await getUser(ctx.sql, caller.user);
    return { ...user, token: { id: caller.tokenId, readOnly: caller.readOnly } };
  }),

  /** Its tokens stop working at once; the user stays, as its history names it. */
  disable: procedure
    .meta(ADMIN_WRITE)
    .input(byUser)
    .mutation(async ({ ctx, input }) => {
      // So a cloud cannot shut its last admin out by a slip.
      if (input.user === ctx.caller.user) {
        throw new CloudPreconditionError('a user cannot disable itself');
      }
      return disableUser(ctx.sql, actorOf(ctx), input.user);
    }),
});
