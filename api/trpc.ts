import { initTRPC } from '@trpc/server';
import { z } from 'zod';
import type { Context } from './context.ts';
import { toTRPCError, vagothErrorData } from './errors.ts';

// Plain JSON, no transformer: any HTTP client in any language can call the API.
const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const zodError = error.cause instanceof z.ZodError ? z.flattenError(error.cause) : null;
    const { stack: _stack, ...data } = shape.data;
    return { ...shape, data: { ...data, zodError, vagoth: vagothErrorData(error) } };
  },
});

/** Every procedure's errors pass through the one mapping in errors.ts. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) throw toTRPCError(result.error.cause ?? result.error);
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(mapErrors);
export const createCallerFactory = t.createCallerFactory;
