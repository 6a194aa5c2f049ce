import postgres from 'postgres';
import type { FailureType } from '../common/vocabulary.ts';

/** Domain errors of the registry; the API maps each to one tRPC code in api/errors.ts. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    readonly kind: string,
    readonly key: string,
  ) {
    super(`${kind} ${JSON.stringify(key)} not found`);
  }
}

/** For a caller to whom a row already gone is an answer: null for NotFoundError, else rethrows. */
export function nullIfNotFound(err: unknown): null {
  if (err instanceof NotFoundError) return null;
  throw err;
}

export class KeyConflictError extends Error {
  override name = 'KeyConflictError';
  constructor(
    readonly key: string,
    readonly holder: string,
    options?: ErrorOptions,
  ) {
    super(`${key} is already held by ${holder}`, options);
  }
}

export class NoCapacityError extends Error {
  override name = 'NoCapacityError';
  constructor(readonly reasons: Record<string, string>) {
    const detail = Object.entries(reasons)
      .map(([host, why]) => `${host}: ${why}`)
      .join('; ');
    super(`no host can take this VM${detail ? ` (${detail})` : ' (no hosts registered)'}`);
  }
}

export class StateConflictError extends Error {
  override name = 'StateConflictError';
  constructor(
    readonly node: string,
    readonly state: string,
    readonly wanted: string,
  ) {
    super(`${node} is ${state}; cannot ${wanted}`);
  }
}

/** A request that is well-formed but wrong for the registry's contents (an IP outside its network). */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A node that is part of a tree (it has a parent, or children) cannot be deleted. */
export class NodeInUseError extends Error {
  override name = 'NodeInUseError';
  constructor(
    readonly node: string,
    readonly parent: string | null,
    readonly children: number,
    options?: ErrorOptions,
  ) {
    const why = parent !== null ? `has parent ${parent}` : `has ${children} child node(s)`;
    super(`${node} still ${why}; detach it first`, options);
  }
}

/** A parent is never overwritten: it is cleared, then set. */
export class ParentAlreadySetError extends Error {
  override name = 'ParentAlreadySetError';
  constructor(
    readonly node: string,
    readonly parent: string,
  ) {
    super(`${node} already has parent ${parent}; clear it first`);
  }
}

/** Setting the parent would make the node its own ancestor. */
export class ParentCycleError extends Error {
  override name = 'ParentCycleError';
  constructor(
    readonly node: string,
    readonly parent: string,
  ) {
    super(`${parent} is ${node} or one of its descendants; it cannot be its parent`);
  }
}

/**
 * A node a lifecycle owns (a VM, a host, a migration hold) that the generic node functions
 * were asked to change (registry/node-guard.ts, 009_lifecycle_nodes.sql).
 */
export class LifecycleOwnedError extends Error {
  override name = 'LifecycleOwnedError';
  constructor(
    readonly type: string,
    readonly node: string,
    readonly wanted: string,
    options?: ErrorOptions,
  ) {
    super(`${type} ${node} is owned by ${owner(type)}; nodes.* cannot ${wanted}`, options);
  }
}

function owner(type: string): string {
  if (type === 'vm') return 'its workflow (vms.*)';
  if (type === 'host') return 'its workflows (hosts.*)';
  return "its VM's move (vms.migrate)";
}

/** A pagination cursor that this registry did not hand out. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
  constructor(options?: ErrorOptions) {
    super('cursor: not a cursor returned by this list', options);
  }
}

/** A registry error's stable type and the details a caller acts on. */
export interface DomainErrorInfo {
  type: FailureType;
  details?: unknown;
  /** Said instead of the error's own message, which may show the registry's internals. */
  message?: string;
}

// SQLSTATE classes PostgreSQL answers the same way however often the statement is sent: data
// exceptions (22), integrity (23), syntax and access (42), cardinality (21), feature not
// supported (0A), check option (44), PL/pgSQL raises (P0) and vagoth's own (VG). Everything
// else (connection 08, serialization and deadlock 40, resources 53, admin shutdown 57, ...)
// may pass and is retried.
const PERMANENT_SQLSTATE = /^(?:21|22|23|42|0A|44|P0|VG)/;

/** A PostgreSQL error that retrying cannot cure: its failure type, else undefined. */
function permanentDatabaseError(err: unknown): DomainErrorInfo | undefined {
  if (!(err instanceof postgres.PostgresError) || !PERMANENT_SQLSTATE.test(err.code)) {
    return undefined;
  }
  const sqlstate = err.code;
  return sqlstate.startsWith('22')
    ? {
        type: 'DataRejected',
        details: { sqlstate },
        message: `input: a value the registry cannot store (SQLSTATE ${sqlstate})`,
      }
    : { type: 'RegistryFault', details: { sqlstate }, message: 'internal error' };
}

/**
 * The one description of every registry error: activities turn it into a typed Temporal
 * failure, the API into a tRPC code, so both always agree on types and details.
 */
export function describeDomainError(err: unknown): DomainErrorInfo | undefined {
  if (err instanceof KeyConflictError) {
    return { type: 'KeyConflict', details: { key: err.key, holder: err.holder } };
  }
  if (err instanceof NoCapacityError) return { type: 'NoCapacity', details: err.reasons };
  if (err instanceof NotFoundError)
    return { type: 'NotFound', details: { kind: err.kind, key: err.key } };
  if (err instanceof StateConflictError) return { type: 'StateConflict' };
  if (err instanceof InvalidRequestError) {
    return { type: 'InvalidRequest', details: { field: err.field, reason: err.reason } };
  }
  if (err instanceof NodeInUseError) {
    return {
      type: 'NodeInUse',
      details: { node: err.node, parent: err.parent, children: err.children },
    };
  }
  if (err instanceof ParentAlreadySetError) {
    return { type: 'ParentAlreadySet', details: { node: err.node, parent: err.parent } };
  }
  if (err instanceof ParentCycleError) {
    return { type: 'ParentCycle', details: { node: err.node, parent: err.parent } };
  }
  if (err instanceof InvalidCursorError) return { type: 'InvalidCursor' };
  if (err instanceof LifecycleOwnedError) {
    return { type: 'LifecycleOwned', details: { node: err.node, type: err.type } };
  }
  // 009_lifecycle_nodes.sql's refusal: its message says why, its detail names the type.
  if (err instanceof postgres.PostgresError && err.code === 'VG004') {
    return { type: 'LifecycleOwned', details: { type: err.detail }, message: err.message };
  }
  return permanentDatabaseError(err);
}
