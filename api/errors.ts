import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { isFailureType, type FailureType } from '../common/vocabulary.ts';
import { describeDomainError } from '../registry/errors.ts';

// The one table from a failure type to an API code: a type without one fails typecheck.
const CODES: Record<FailureType, TRPC_ERROR_CODE_KEY> = {
  KeyConflict: 'CONFLICT',
  NotFound: 'NOT_FOUND',
  NoCapacity: 'PRECONDITION_FAILED',
  StateConflict: 'PRECONDITION_FAILED',
  // A VM's entity workflow refused an operation its state does not allow (an update validator).
  OperationRejected: 'PRECONDITION_FAILED',
  // A step of a reset VM workflow, refused: the registry moved past the reset point.
  ResetRefused: 'PRECONDITION_FAILED',
  DriverRejected: 'BAD_REQUEST',
  // The host no longer has the VM's domain.
  DomainNotFound: 'NOT_FOUND',
  NotOurs: 'FORBIDDEN',
  // vagoth is the gateway to the hypervisor, and the hypervisor did not answer.
  HostUnreachable: 'BAD_GATEWAY',
  HostTimeout: 'TIMEOUT',
  Unsupported: 'METHOD_NOT_SUPPORTED',
  // A volume still held bytes after its wipe: the server could not do what it must.
  WipeUnverified: 'INTERNAL_SERVER_ERROR',
  // The image is not one vagoth takes; the reason says why.
  ImageRejected: 'BAD_REQUEST',
  InvalidRequest: 'BAD_REQUEST',
  // The node tree: a node in one cannot go, and a parent is cleared before it is set again.
  NodeInUse: 'PRECONDITION_FAILED',
  ParentAlreadySet: 'CONFLICT',
  ParentCycle: 'CONFLICT',
  InvalidCursor: 'BAD_REQUEST',
  // Never allowed, whoever asks: VMs, hosts and migration holds change through their lifecycles.
  LifecycleOwned: 'FORBIDDEN',
  DataRejected: 'BAD_REQUEST',
  // A statement the registry refuses whatever the input: a bug, said without its internals.
  RegistryFault: 'INTERNAL_SERVER_ERROR',
};

// Said instead of the failure's own message, which names the registry's internals.
const MESSAGES: Partial<Record<FailureType, string>> = {
  DataRejected: 'input: a value the registry cannot store',
  RegistryFault: 'internal error',
};

/** The first ApplicationFailure of a known type in a Temporal error's cause chain. */
function applicationFailure(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && isFailureType(e.type)) return e;
  }
  return undefined;
}

function domainType(
  err: unknown,
): { type: FailureType; message: string; details?: unknown } | undefined {
  const domain = describeDomainError(err);
  if (domain) return { ...domain, message: domain.message ?? (err as Error).message };
  const failure = applicationFailure(err);
  if (isFailureType(failure?.type)) {
    const message = MESSAGES[failure.type] ?? failure.message;
    return { type: failure.type, message, details: failure.details?.[0] };
  }
  return undefined;
}

/** Maps any error thrown by a procedure to a TRPCError; unknown errors leak no internals. */
export function toTRPCError(err: unknown): TRPCError {
  if (err instanceof TRPCError) return err;
  const known = domainType(err);
  if (known) {
    const error = new TRPCError({
      code: CODES[known.type],
      message: known.message,
      cause: err,
    });
    return Object.assign(error, { vagoth: { type: known.type, details: known.details } });
  }
  if (err instanceof WorkflowNotFoundError) {
    return new TRPCError({ code: 'NOT_FOUND', message: 'operation not found', cause: err });
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return new TRPCError({ code: 'CONFLICT', message: err.message, cause: err });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error', cause: err });
}

export function vagothErrorData(error: TRPCError): { type: string; details?: unknown } | null {
  return (error as TRPCError & { vagoth?: { type: string; details?: unknown } }).vagoth ?? null;
}
