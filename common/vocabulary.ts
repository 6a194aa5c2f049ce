/**
 * The one vocabulary the workflows, the activities, the registry and the API share: the types
 * of failure an operation can end with, and the ids of the workflows. Pure (no imports), so
 * workflow code may use it; eslint.config.js keeps it that way.
 */

/**
 * Every failure type, and whether retrying can cure it. A type added here must be given an
 * API code in api/errors.ts (typecheck fails until it is); permanent ones are never retried
 * by an activity (workflows/proxies.ts).
 */
export const FAILURES = {
  // The registry's (registry/errors.ts, describeDomainError).
  KeyConflict: { permanent: true },
  NotFound: { permanent: true },
  NoCapacity: { permanent: true },
  StateConflict: { permanent: true },
  InvalidRequest: { permanent: true },
  NodeInUse: { permanent: true },
  ParentAlreadySet: { permanent: true },
  ParentCycle: { permanent: true },
  InvalidCursor: { permanent: true },
  /** nodes.* asked to change a VM, a host or a migration hold: their lifecycles own them. */
  LifecycleOwned: { permanent: true },
  /** PostgreSQL refused a value (SQLSTATE class 22): the same value is refused again. */
  DataRejected: { permanent: true },
  /** Any other error PostgreSQL will answer the same way every time (23, 42, ...): a bug. */
  RegistryFault: { permanent: true },
  // A VM's entity workflow refused an operation its state does not allow (an update validator).
  OperationRejected: { permanent: true },
  /**
   * A step of a VM's workflow run begun by a Temporal Reset, refused: the registry holds a
   * change the reset run's history lacks (common/run-position.ts).
   */
  ResetRefused: { permanent: true },
  // The drivers' (activities/failures.ts).
  DriverRejected: { permanent: true },
  DomainNotFound: { permanent: true },
  NotOurs: { permanent: true },
  Unsupported: { permanent: true },
  /**
   * A wipe's read-back found bytes that are not zero (something wrote to the volume while it
   * was wiped): the volume is kept. Another wipe may cure it, but only once someone has looked.
   */
  WipeUnverified: { permanent: true },
  /**
   * An image vagoth will not keep (images/store.ts): not the digest asked for, not qcow2 or
   * raw, naming another file, too large, or from a source the worker's allow-lists refuse.
   */
  ImageRejected: { permanent: true },
  HostUnreachable: { permanent: false },
  HostTimeout: { permanent: false },
} as const satisfies Record<string, { permanent: boolean }>;

export type FailureType = keyof typeof FAILURES;

export function isFailureType(type: unknown): type is FailureType {
  return typeof type === 'string' && Object.hasOwn(FAILURES, type);
}

/** The failure types retrying cannot cure. */
export const PERMANENT_FAILURES: readonly FailureType[] = (
  Object.keys(FAILURES) as FailureType[]
).filter((type) => FAILURES[type].permanent);

// Workflow ids derive from the resource, so a retried request finds the run under way. Names
// (api/schemas.ts nameSchema) hold neither ':' nor '*', so no two kinds of id can meet.

/** A VM's entity workflow. Running ones are found by this id: it must never change. */
export const vmWorkflowId = (name: string) => `vm:${name}`;

/** A host's entity workflow: its maintenance, activate and evacuate, one at a time. */
export const hostWorkflowId = (name: string) => `host:${name}`;

/** A host's registration: a retried request joins the one under way. */
export const hostRegisterWorkflowId = (name: string) => `host:${name}:register`;

/** An image's import, by the image's id: a name may be given to another image later. */
export const imageImportWorkflowId = (id: string) => `image:${id}:import`;

/** An image's deletion: a retried request joins the one under way. */
export const imageDeleteWorkflowId = (id: string) => `image:${id}:delete`;

/**
 * The id prefix of the monitor schedule's runs (Temporal appends each run's time); a test's
 * own schedule adds its id.
 */
export const monitorScheduledWorkflowId = (scheduleId?: string) =>
  scheduleId === undefined ? 'monitor:cluster' : `monitor:cluster:${scheduleId}`;

/**
 * A poll on demand, of one host or of all: polls of one scope join. `*` for all, which no
 * host can be named (a host named `all` once shared the cluster-wide poll's id).
 */
export const monitorPollWorkflowId = (host?: string) => `monitor:poll:${host ?? '*'}`;
