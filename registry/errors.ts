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

/** A pagination cursor that this registry did not hand out. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
  constructor(options?: ErrorOptions) {
    super('cursor: not a cursor returned by this list', options);
  }
}
