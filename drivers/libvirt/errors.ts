import {
  constants as C,
  isLibvirtError,
  isReleasedError,
  type LibvirtError,
} from '../../native/libvirt/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { bounded, DriverError, type DriverErrorKind } from '../driver.ts';
import { DomainXmlError } from './domain-xml.ts';

/** libvirt's error numbers by what a workflow should make of them. */
const KIND_BY_CODE = new Map<number, DriverErrorKind>([
  [C.VIR_ERR_NO_DOMAIN, 'not-found'],
  [C.VIR_ERR_NO_STORAGE_VOL, 'not-found'],
  [C.VIR_ERR_NO_STORAGE_POOL, 'not-found'],

  [C.VIR_ERR_XML_ERROR, 'rejected'],
  [C.VIR_ERR_XML_DETAIL, 'rejected'],
  [C.VIR_ERR_XML_INVALID_SCHEMA, 'rejected'],
  [C.VIR_ERR_CONFIG_UNSUPPORTED, 'rejected'],
  [C.VIR_ERR_INVALID_ARG, 'rejected'],
  [C.VIR_ERR_INVALID_MAC, 'rejected'],
  [C.VIR_ERR_NO_NETWORK, 'rejected'],
  [C.VIR_ERR_NO_KERNEL, 'rejected'],
  [C.VIR_ERR_NO_OS, 'rejected'],
  [C.VIR_ERR_OPERATION_INVALID, 'rejected'],
  [C.VIR_ERR_OPERATION_FAILED, 'rejected'],
  [C.VIR_ERR_DOM_EXIST, 'rejected'],
  [C.VIR_ERR_STORAGE_VOL_EXIST, 'rejected'],
  [C.VIR_ERR_MIGRATE_UNSAFE, 'rejected'],
  [C.VIR_ERR_OPERATION_DENIED, 'rejected'],
  [C.VIR_ERR_ACCESS_DENIED, 'rejected'],
  [C.VIR_ERR_AUTH_FAILED, 'rejected'],

  [C.VIR_ERR_NO_SUPPORT, 'unsupported'],
  [C.VIR_ERR_OPERATION_UNSUPPORTED, 'unsupported'],
  [C.VIR_ERR_ARGUMENT_UNSUPPORTED, 'unsupported'],

  [C.VIR_ERR_SYSTEM_ERROR, 'unreachable'],
  [C.VIR_ERR_RPC, 'unreachable'],
  [C.VIR_ERR_NO_CONNECT, 'unreachable'],
  [C.VIR_ERR_INVALID_CONN, 'unreachable'],
  [C.VIR_ERR_UNKNOWN_HOST, 'unreachable'],
  [C.VIR_ERR_SSH, 'unreachable'],
  [C.VIR_ERR_LIBSSH, 'unreachable'],
  [C.VIR_ERR_AUTH_UNAVAILABLE, 'unreachable'],

  [C.VIR_ERR_OPERATION_TIMEOUT, 'timeout'],
  [C.VIR_ERR_AGENT_UNRESPONSIVE, 'timeout'],
  [C.VIR_ERR_RESOURCE_BUSY, 'timeout'],
]);

/** Where an error came from when its number alone says little (VIR_ERR_INTERNAL_ERROR, ...). */
const TRANSPORT = new Set([C.VIR_FROM_RPC, C.VIR_FROM_REMOTE, C.VIR_FROM_SSH, C.VIR_FROM_LIBSSH]);

export function kindOf(err: LibvirtError): DriverErrorKind {
  const known = KIND_BY_CODE.get(err.code);
  if (known) return known;
  // A lost connection ("client socket is closed") arrives as an internal error of the RPC layer.
  if (TRANSPORT.has(err.domain)) return 'unreachable';
  // Anything else the hypervisor said is its answer to this request: trying again repeats it.
  return 'rejected';
}

export function hasCode(err: unknown, ...codes: number[]): err is LibvirtError {
  return isLibvirtError(err) && codes.includes(err.code);
}

/** One DriverError for whatever a call threw, libvirt's error number kept as `code`. */
export function classify(err: unknown, what: string): DriverError {
  if (err instanceof DriverError) return err;
  if (isLibvirtError(err)) {
    // libvirt's message may quote what it read (a file's first line): bounded for callers,
    // in full in `detail` for the worker's log.
    return new DriverError(kindOf(err), `${what}: ${bounded(err.message)}`, {
      cause: err,
      code: err.code,
      detail: err.message,
    });
  }
  // The connection was closed under this call (dropped as unreachable by another one).
  if (isReleasedError(err))
    return new DriverError('unreachable', `${what}: ${String(err)}`, { cause: err });
  if (err instanceof DomainXmlError) {
    return new DriverError('rejected', `${what}: ${err.message}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DriverError('rejected', `${what}: ${message}`, { cause: err });
}

/**
 * Whether libvirt refused a volume upload because another upload to that volume was being set
 * up at that very moment: libvirt counts a volume "in use" only while it opens an upload's
 * stream, not while the bytes flow, so two uploads under way at once (a copy's lanes, or an
 * aborted attempt's last chunk beside its retry) can meet there.
 */
function isOpeningElsewhere(err: unknown): boolean {
  return hasCode(err, C.VIR_ERR_OPERATION_INVALID) && /still in use/.test(err.message);
}

/** How long an upload waits, in all, for the volume's other uploads to finish opening. */
const OPENING_PATIENCE_MS = 10_000;

/** `upload()`, tried again (with jitter) while the volume's other uploads are being opened. */
export async function uploadWhenFree<T>(
  upload: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = performance.now() + OPENING_PATIENCE_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await upload();
    } catch (err) {
      if (!isOpeningElsewhere(err) || performance.now() > deadline) throw err;
      const pause = Math.min(200, 5 * attempt) * (0.5 + Math.random());
      await sleep(pause, undefined, signal ? { signal } : {});
    }
  }
}
