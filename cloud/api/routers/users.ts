import { CloudPreconditionError } from '../../errors.ts';
import { createUser, disableUser, getUser, listUsers } from '../../store/users.ts';
import { z } from 'zod';
import { meOut, userOut } from '../outputs.ts';
import { actorOf } from '../context.ts';
import { byUser, userCreateInput } from '../schemas.ts';
import { ADMIN_READ, ADMIN_WRITE, USER_READ, procedure, router, routes } from '../trpc.ts';

const at = routes('users');

export const usersRouter = router({
  create: procedure
    .meta(at(ADMIN_WRITE, 'POST /users'))
    .input(userCreateInput)
    .output(userOut)
    .mutation(async ({ ctx, input }) => {
      return createUser(ctx.sql, actorOf(ctx), input);
    }),

  list: procedure
    .meta(at(ADMIN_READ, 'GET /users'))
    .output(z.array(userOut))
    .query(({ ctx }) => listUsers(ctx.sql)),

  /** Oneself, or (for an admin) anyone. */
  get: procedure
    .meta(at(USER_READ, 'GET /users/{user}'))
    .input(byUser)
    .output(userOut)
    .query(({ ctx, input }) => getUser(ctx.sql, input.user)),

  /** The caller: its user, its roles in its projects, and what its token is narrowed to. */
  me: procedure
    .meta(at(USER_READ, 'GET /me'))
    .output(meOut)
    .query(async ({ ctx }) => {
      const { caller } = ctx;
      const user = await getUser(ctx.sql, caller.user);
      return { ...user, token: { id: caller.tokenId, readOnly: caller.readOnly } };
    }),

  /** Its tokens stop working at once; the user stays, as its history names it. */
  disable: procedure
    .meta(at(ADMIN_WRITE, 'POST /users/{user}/disable'))
    .input(byUser)
    .output(userOut)
    .mutation(async ({ ctx, input }) => {
      // So a cloud cannot shut its last admin out by a slip.
      if (input.user === ctx.caller.user) {
        throw new CloudPreconditionError('a user cannot disable itself');
      }
      return disableUser(ctx.sql, actorOf(ctx), input.user);
    }),
});
