import { initTRPC } from '@trpc/server';
import { z } from 'zod';
import type { Context } from './context.ts';
import { toTRPCError, vagothErrorData } from './errors.ts';

// Plain JSON, no transformer: any HTTP client in any language can call the API.
const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    const issues = error.cause instanceof z.ZodError ? error.cause : null;
    const { stack: _stack, ...data } = shape.data;
    return {
      ...shape,
      // Name every bad field in the message itself, for clients that show only the message.
      message: issues
        ? issues.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')
        : shape.message,
      data: {
        ...data,
        zodError: issues ? z.flattenError(issues) : null,
        vagoth: vagothErrorData(error),
      },
    };
  },
});

/** Every procedure's errors pass through the one mapping in errors.ts. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  // tRPC wraps what a procedure throws in INTERNAL_SERVER_ERROR; its own errors (bad input) pass.
  if (!result.ok) {
    throw result.error.code === 'INTERNAL_SERVER_ERROR'
      ? toTRPCError(result.error.cause ?? result.error)
      : result.error;
  }
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(mapErrors);
export const createCallerFactory = t.createCallerFactory;
