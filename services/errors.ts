/** The service layer's failures, as its reconcile tells them in a service's status. */

/** The cloud did not answer (refused, timed out, not its API): try again next tick. */
export class CloudUnreachableError extends Error {
  override name = 'CloudUnreachableError';
}

/** The cloud refused an instance for the project's quota: `message` names it and its limit. */
export class QuotaRefusedError extends Error {
  override name = 'QuotaRefusedError';
}

/** No cluster of the cloud has room for the instance: `message` holds the allocator's reasons. */
export class UnplaceableError extends Error {
  override name = 'UnplaceableError';
}

/** Any other refusal of the cloud's: its API code and its message. */
export class CloudRefusedError extends Error {
  override name = 'CloudRefusedError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A caller's credentials for another cloud (`clouds.<name>`) are missing, not wanted, or not
 * good there: `field` is the input field to name, `code` the API code to answer with.
 */
export class CloudCredentialsError extends Error {
  override name = 'CloudCredentialsError';
  constructor(
    readonly field: string,
    readonly code: 'BAD_REQUEST' | 'FORBIDDEN' | 'BAD_GATEWAY',
    why: string,
  ) {
    super(`${field}: ${why}`);
  }
}
