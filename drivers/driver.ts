import type {
  HostAddress,
  HostCapacity,
  VmDefinition,
  VmImage,
  VolumeRef,
} from '../registry/types.ts';

export type { VolumeRef };

export type DomainState = 'running' | 'stopped' | 'paused' | 'shutting-down' | 'crashed' | 'other';

/** What vagoth gives a driver to deploy: the registry's VM, by its stable id. */
export interface DomainSpec {
  id: string;
  name: string;
  definition: VmDefinition;
  /** The VM's volumes as recorded in the registry, attached as disks in this order. */
  volumes?: VolumeRef[];
}

/**
 * Whether a definition asks for storage: a disk, or an image to install. A VM whose
 * definition does not has no volumes on any driver (volumesFor answers none).
 */
export function wantsStorage(
  definition: Pick<VmDefinition, 'diskGiB' | 'image' | 'disks'>,
): boolean {
  return definition.diskGiB > 0 || Boolean(definition.image) || Boolean(definition.disks?.length);
}

/** A VM as the host sees it: its state and the definition the host holds. */
export interface DomainInfo {
  name: string;
  state: DomainState;
  /** The vagoth VM id recorded in the domain's metadata; null for a domain vagoth did not create. */
  vagothId: string | null;
  vcpus: number;
  memoryMiB: number;
  /** MAC addresses of its NICs, lower case. */
  macs: string[];
}

export interface HostStatus {
  /** What the hardware has. */
  capacity: HostCapacity;
  /** Memory the host reports free now (MemAvailable-like, not only NUMA-node figures). */
  freeMemoryMiB: number;
  /** 1, 5 and 15 minute load averages, where the host reports them. */
  load: [number, number, number] | null;
  domains: DomainInfo[];
}

/** Reported by long operations (wipe, migrate) so an activity can heartbeat it. */
export interface Progress {
  step: string;
  done: number;
  total: number;
  /** The volume the step works on (a wipe's bytes, a provision's creation), when it is one. */
  volume?: VolumeRef;
}

export interface ProgressOptions {
  onProgress?: (progress: Progress) => void;
  signal?: AbortSignal;
  /**
   * The last progress an earlier attempt of this same call reported (its heartbeat), so the
   * driver can go on from there rather than start over. Only a hint: the driver still checks
   * what the host holds, acts only on the volumes of the spec it is given, and ignores a
   * progress it cannot match to them. A driver that cannot resume ignores it.
   */
  resumeFrom?: Progress;
}

export interface ShutdownOptions {
  /** How long to wait for the guest to power itself off. */
  timeoutMs: number;
  /** Power off when the guest has not stopped by then; otherwise fail with `timeout`. */
  force?: boolean;
}

export interface MigrateOptions extends ProgressOptions {
  /** Live where the driver can; a driver that cannot falls back to cold unless `liveOnly`. */
  live?: boolean;
  liveOnly?: boolean;
}

export interface MigrateResult {
  live: boolean;
  /** Why a move asked to be live went cold (the hosts could not), for the operation's result. */
  note?: string;
}

/**
 * How one volume was wiped, reported before it is deleted (and when its check fails, instead).
 * `method`: `stream` (zeros streamed over every byte), `libvirt` (libvirt's own wipe),
 * `check-only` (an earlier attempt, cut short before the delete, had zeroed it all: only read
 * back now), `agent` (handed to the local manager to remove, unseen), `none` (a simulated
 * volume, which holds no bytes).
 */
export interface WipeRecord {
  volume: VolumeRef;
  method: 'stream' | 'libvirt' | 'check-only' | 'agent' | 'none';
  /** Null where the local manager does not say (`agent`). */
  sizeBytes: number | null;
  /**
   * Written by this attempt (null where unknown: libvirt's wipe may truncate rather than
   * write); an attempt that resumed a wipe cut short began at `resumedFrom`.
   */
  bytesWritten: number | null;
  resumedFrom: number;
  ms: number;
  /** The read-back: null where the bytes cannot be read (`agent`, `none`). */
  check: WipeCheck | null;
}

/** Blocks read back after a wipe; `nonZeroAt` is the first byte found not zero, else null. */
export interface WipeCheck {
  blocks: number;
  bytesRead: number;
  nonZeroAt: number | null;
}

export interface ProvisionOptions extends ProgressOptions {
  onWiped?: (record: WipeRecord) => Promise<void>;
  /** The cloud-init seed (an ISO 9660 image) of a VM from an image, written into its seed volume. */
  seed?: Buffer;
}

export interface DeprovisionOptions extends ProgressOptions {
  /**
   * Called with each volume's wipe once it is done and checked, before the volume is deleted
   * (so a crash after it leaves the volume, to be wiped again, never a deletion unrecorded).
   * A failed check is reported too, then the call fails `unwiped` and keeps the volume.
   */
  onWiped?: (record: WipeRecord) => Promise<void>;
  /**
   * The VM has moved to another host and these are its volumes left on the one it came from:
   * volumes on storage both hosts share are its disks there too, so they stay.
   */
  movedAway?: boolean;
  /**
   * What a failed move left on its target: the VM's domain there is undefined only while it
   * is not running (a running one is refused, `rejected`, and nothing is wiped), and no volume
   * is wiped while a domain of the VM's name is still there afterwards.
   */
  onlyStopped?: boolean;
}

/**
 * One local VM manager (libvirt, geats). Every operation is idempotent where the hypervisor
 * allows it, so an activity may be retried after a lost answer.
 */
export interface Driver {
  /**
   * Whether `migrate` brings the VM's storage to the target itself (geats's migrate does):
   * then vagoth makes nothing on the target first. Otherwise the target's volumes are
   * provisioned before the move, for the driver to fill (libvirt copies into them).
   */
  readonly migrateMovesStorage?: boolean;
  status(): Promise<HostStatus>;
  /**
   * Which hypervisor this is, whatever name or spelling of its address reached it: two hosts
   * with one identity are one hypervisor, registered once. Optional for wrappers in tests.
   */
  hostId?(): Promise<string>;
  /** Null when the host has no such domain. */
  info(name: string): Promise<DomainInfo | null>;
  /**
   * The volumes provision will create for this VM on this host, named from its id; none
   * unless the definition wantsStorage. Pure: the registry claims their `vol:` keys before
   * anything is created.
   */
  volumesFor(spec: Pick<DomainSpec, 'id' | 'name' | 'definition'>): VolumeRef[];
  /**
   * Creates the VM's volumes (from its image when the definition names one); existing ones of
   * this VM are kept, but one an earlier attempt may have left half-made is wiped first (and
   * reported through `onWiped`, as deprovision's are) before it is made again.
   */
  provision(spec: DomainSpec, options?: ProvisionOptions): Promise<VolumeRef[]>;
  /**
   * Where this host keeps its copy of an image, which root disks of the image are overlays on
   * (pure). Absent where the local manager keeps images itself (geats's templates): then
   * nothing is copied to the host.
   */
  imageVolume?(image: VmImage): VolumeRef;
  /**
   * Copies an image file of the worker's image store to `imageVolume(image)`, going on from
   * the `resumeFrom` of an earlier attempt, and checks the copy against the image's digest.
   * The caller holds the registry's lease on that copy (registry/host-images.ts): one copier
   * per host and image.
   */
  copyImage?(image: VmImage, file: string, options?: ProgressOptions): Promise<void>;
  /** Whether the host still holds its copy of the image (one removed by hand is not). */
  hasImage?(image: VmImage): Promise<boolean>;
  /**
   * Deletes the host's copy of an image, where the registry recorded it (by default where
   * imageVolume says); already gone is success.
   */
  removeImage?(image: VmImage, where?: VolumeRef): Promise<void>;
  define(spec: DomainSpec): Promise<void>;
  /**
   * Boots the domain (already running is success); answers the state the host reports right
   * after, so a caller learns without another call whether it is running yet.
   */
  start(name: string): Promise<DomainState>;
  /** Power off. A domain already stopped or gone is success. */
  stop(name: string): Promise<void>;
  /** Graceful (ACPI) shutdown, waiting for the guest. */
  shutdown(name: string, options: ShutdownOptions): Promise<void>;
  reboot(name: string): Promise<void>;
  /** Moves the domain to another host of the same driver; the target's volumes are its concern. */
  migrate(spec: DomainSpec, target: HostAddress, options?: MigrateOptions): Promise<MigrateResult>;
  /**
   * Power the domain off and forget it, keep its storage; a domain already gone is success.
   * Refuses a domain vagoth did not create, before touching it.
   */
  undefine(spec: Pick<DomainSpec, 'id' | 'name'>): Promise<void>;
  /**
   * Undefine, then wipe and delete the VM's recorded volumes. Refuses any volume that is not
   * named for this VM or lies outside the host's configured pools; volumes already gone are success.
   */
  deprovision(
    spec: Pick<DomainSpec, 'id' | 'name'> & { volumes: VolumeRef[] },
    options?: DeprovisionOptions,
  ): Promise<void>;
  close(): Promise<void>;
}

/**
 * `unreachable` and `timeout` may succeed when tried again; the others will not:
 * `rejected` (the host refused the definition or request), `not-found`, `not-ours` (the
 * target was not created by vagoth for this VM), `unsupported` (the host cannot do this).
 */
/** `unwiped`: a wipe's read-back found bytes that are not zero; the volume is kept. */
export type DriverErrorKind =
  'unreachable' | 'timeout' | 'rejected' | 'not-found' | 'not-ours' | 'unsupported' | 'unwiped';

export interface DriverErrorOptions extends ErrorOptions {
  /** The local manager's own error code (libvirt's virErrorNumber, a geats errorcode). */
  code?: number | string;
  /**
   * What the manager or agent printed, in full: for the worker's log only. It may hold
   * anything a file or program held, so it never reaches a caller (activities/failures.ts).
   */
  detail?: string;
}

/** At most `max` characters of one line, without control characters: a message for callers. */
export function bounded(text: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/**
 * What a caller's own callback (DeprovisionOptions.onWiped) threw, carried through the driver
 * as it was: not the host's failure, so never classified as one.
 */
export class CallbackFailed extends Error {
  override name = 'CallbackFailed';
  constructor(readonly error: unknown) {
    super('a callback of the caller failed', { cause: error });
  }
}

/** Calls a caller's callback; what it throws leaves the driver untouched (CallbackFailed). */
export async function callBack<A>(fn: ((arg: A) => Promise<void>) | undefined, arg: A) {
  try {
    await fn?.(arg);
  } catch (err) {
    throw new CallbackFailed(err);
  }
}

/** `retryable` tells a workflow whether trying again can help. */
export class DriverError extends Error {
  override name = 'DriverError';
  readonly code: number | string | undefined;
  readonly detail: string | undefined;
  constructor(
    readonly kind: DriverErrorKind,
    message: string,
    options?: DriverErrorOptions,
  ) {
    super(message, options);
    this.code = options?.code;
    this.detail = options?.detail;
  }
  get retryable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout';
  }
}

export type DriverFactory = (host: HostAddress) => Driver;
