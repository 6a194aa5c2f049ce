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
