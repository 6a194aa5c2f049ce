import { cloudEvents } from '../../store/events.ts';
import { cloudEventsOut } from '../outputs.ts';
import { eventsListInput } from '../schemas.ts';
import { ADMIN_READ, procedure, router, routes } from '../trpc.ts';

const at = routes('events');

/** The cloud's history, for its admins: every change, in a project or not. */
export const eventsRouter = router({
  list: procedure
    .meta(at(ADMIN_READ, 'GET /events'))
    .input(eventsListInput)
    .output(cloudEventsOut)
    .query(({ ctx, input }) => cloudEvents(ctx.sql, input)),
});
