import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import {
  CloudConflictError,
  CloudInputError,
  CloudNotFoundError,
  CloudPreconditionError,
  ClusterUnreachableError,
} from '../errors.ts';

// The one table from the cloud's domain errors to API codes.
const CODES: Array<[new (...args: never[]) => Error, TRPC_ERROR_CODE_KEY]> = [
  [CloudNotFoundError, 'NOT_FOUND'],
  [CloudConflictError, 'CONFLICT'],
  [CloudPreconditionError, 'PRECONDITION_FAILED'],
  [CloudInputError, 'BAD_REQUEST'],
  // The cloud is the gateway to its clusters, and one did not answer.
  [ClusterUnreachableError, 'BAD_GATEWAY'],
];

/** Maps what a cloud procedure threw to a TRPCError; unknown errors leak no internals. */
export function toCloudError(err: unknown): TRPCError {
  // A cluster's own answer through the local driver (NOT_FOUND, CONFLICT, ...) passes as is.
  if (err instanceof TRPCError) return err;
  for (const [type, code] of CODES) {
    if (err instanceof type) return new TRPCError({ code, message: err.message, cause: err });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error', cause: err });
}
