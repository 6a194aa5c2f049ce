import { TRPCError } from '@trpc/server';
import { expect } from 'vitest';

/** The TRPCError a call fails with; the test fails if it succeeds. */
export async function refusal(call: Promise<unknown>): Promise<TRPCError> {
  const outcome = await call.then(
    () => null,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(TRPCError);
  return outcome as TRPCError;
}
