import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { authorize } from './authorize.ts';
import type { Context } from './context.ts';
import { toTRPCError, vagothErrorData } from './errors.ts';
import { MAX_INPUT_DEPTH, inputDepthExceeds } from './input-depth.ts';

/**
 * The shape of every error answer, the cloud's API's too: no stack, and every bad field named
 * in the message itself, for clients that show only the message.
 */
export function errorFormatter<S extends { message: string; data: { stack?: string } }>({
  shape,
  error,
}: {
  shape: S;
  error: TRPCError;
}) {
  const issues = error.cause instanceof z.ZodError ? error.cause : null;
  const { stack: _stack, ...data } = shape.data;
  return {
    ...shape,
    message: issues
      ? issues.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')
      : shape.message,
    data: {
      ...data,
      zodError: issues ? z.flattenError(issues) : null,
      vagoth: vagothErrorData(error),
    },
  };
}

// The scheme is case-insensitive (RFC 9110); the token is one word.
const BEARER = /^bearer +(\S+)$/i;

export function bearerToken(authorization: string | undefined): string | undefined {
  return BEARER.exec(authorization ?? '')?.[1];
}

// Plain JSON, no transformer: any HTTP client in any language can call the API.
const t = initTRPC.context<Context>().create({ errorFormatter });

/**
 * What a procedure's failure is answered with: tRPC wraps what a procedure throws in
 * INTERNAL_SERVER_ERROR, which `map` turns into its API code; tRPC's own errors (bad input)
 * pass. The cloud's API uses it with its own mapping.
 */
export function answerFor(error: TRPCError, map: (err: unknown) => TRPCError): TRPCError {
  return error.code === 'INTERNAL_SERVER_ERROR' ? map(error.cause ?? error) : error;
}

/** Validation recurses: input nested deeper than any procedure takes is refused before it. */
export async function refuseDeepInput(getRawInput: () => Promise<unknown>): Promise<void> {
  if (inputDepthExceeds(await getRawInput(), MAX_INPUT_DEPTH)) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `input: nested deeper than ${MAX_INPUT_DEPTH} levels`,
    });
  }
}

/** Every procedure's errors pass through the one mapping in errors.ts. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) throw answerFor(result.error, toTRPCError);
  return result;
});

/** Every call carries a token its holder may make the call with; checked before its input. */
const authenticate = t.middleware(async ({ ctx, path, type, next }) => {
  const { credentials } = ctx;
  const principal =
    'principal' in credentials
      ? credentials.principal
      : await ctx.tokens.verify(bearerToken(credentials.authorization));
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

const boundDepth = t.middleware(async ({ getRawInput, next }) => {
  await refuseDeepInput(getRawInput);
  return next();
});

export const router = t.router;
/** The only procedure builder: no procedure can be served without a token. */
export const procedure = t.procedure.use(mapErrors).use(authenticate).use(boundDepth);
export const createCallerFactory = t.createCallerFactory;
