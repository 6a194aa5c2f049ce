import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { authorize } from './authorize.ts';
import type { Context } from './context.ts';
import { toTRPCError, vagothErrorData } from './errors.ts';
import { MAX_INPUT_DEPTH, inputDepthExceeds } from './input-depth.ts';

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

// The scheme is case-insensitive (RFC 9110); the token is one word.
const BEARER = /^bearer +(\S+)$/i;

/** Every call carries a token its holder may make the call with; checked before its input. */
const authenticate = t.middleware(async ({ ctx, path, type, next }) => {
  const { credentials } = ctx;
  const principal =
    'principal' in credentials
      ? credentials.principal
      : await ctx.tokens.verify(BEARER.exec(credentials.authorization ?? '')?.[1]);
  if (!principal) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'needs an Authorization: Bearer header with a valid token',
    });
  }
  const decision = authorize(principal, path, type);
  if (!decision.allowed) throw new TRPCError({ code: 'FORBIDDEN', message: decision.reason });
  return next({ ctx: { ...ctx, principal } });
});

/** Validation recurses: input nested deeper than any procedure takes is refused before it. */
const boundDepth = t.middleware(async ({ getRawInput, next }) => {
  if (inputDepthExceeds(await getRawInput(), MAX_INPUT_DEPTH)) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `input: nested deeper than ${MAX_INPUT_DEPTH} levels`,
    });
  }
  return next();
});

export const router = t.router;
/** The only procedure builder: no procedure can be served without a token. */
export const procedure = t.procedure.use(mapErrors).use(authenticate).use(boundDepth);
export const createCallerFactory = t.createCallerFactory;
