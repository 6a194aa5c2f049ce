/**
 * vagoth's libvirt binding (Node-API, built from ./src by node-gyp). Every method that reaches
 * libvirt runs off the main thread and returns a promise: on libuv's thread pool, or, for the
 * calls that can take long (`open`, `migrate`, `createVolumeXML`, `createVolumeXMLFrom`, `wipe`,
 * `uploadZeros`), on a thread of its own so that they never hold the pool's four threads (see
 * README.md). A failure rejects with a
 * {@link LibvirtError} carrying libvirt's own error number, domain and level, read in the
 * thread that made the call (libvirt keeps errors per thread).
 */
import { createRequire } from 'node:module';

export interface LibvirtError extends Error {
  name: 'LibvirtError';
  /** virErrorNumber, e.g. `constants.VIR_ERR_NO_DOMAIN`. */
  code: number;
  /** virErrorDomain: the part of libvirt that raised it (`VIR_FROM_RPC`, `VIR_FROM_QEMU`, ...). */
  domain: number;
  /** virErrorLevel: 1 warning, 2 error. */
  level: number;
  /** The libvirt function that failed. */
  call: string;
}

export function isLibvirtError(err: unknown): err is LibvirtError {
  return (
    err instanceof Error &&
    err.name === 'LibvirtError' &&
    typeof (err as LibvirtError).code === 'number'
  );
}

/** Thrown (synchronously) by a call on a connection already closed or an object already freed. */
export function isReleasedError(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === 'ERR_LIBVIRT_RELEASED';
}

export interface NodeInfo {
  model: string;
  memoryKiB: number;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface FreeMemory {
  bytes: number;
  /** `stats`: free + buffers + cached over all cells; `cells`: NUMA cells' free pages only. */
  source: 'stats' | 'cells';
}

export interface DomainRuntimeInfo {
  /** virDomainState */
  state: number;
  maxMemKiB: number;
  memoryKiB: number;
  vcpus: number;
  cpuTimeNs: number;
}

export interface MigrateParams {
  uri?: string;
  destName?: string;
  destXml?: string;
  persistentXml?: string;
}

export interface Connection {
  readonly uri: string;
  /** Idempotent. Calls still running finish first; later calls reject. */
  close(): Promise<void>;
  isAlive(): Promise<boolean>;
  nodeGetInfo(): Promise<NodeInfo>;
  /** virNodeGetMemoryStats (all cells), falling back to virNodeGetFreeMemory. */
  nodeFreeMemory(): Promise<FreeMemory>;
  /** virConnectGetCapabilities: the host's capabilities XML (its `<host><uuid>`, where known). */
  getCapabilities(): Promise<string>;
  listAllDomains(flags?: number): Promise<Domain[]>;
  lookupDomainByName(name: string): Promise<Domain>;
  defineDomainXML(xml: string, flags?: number): Promise<Domain>;
  lookupStoragePoolByName(name: string): Promise<StoragePool>;
}

/** Objects below hold a libvirt reference: `free()` drops it now, the GC drops it otherwise. */
interface Freeable {
  free(): void;
}

export interface Domain extends Freeable {
  readonly name: string;
  readonly uuid: string;
  getInfo(): Promise<DomainRuntimeInfo>;
  getState(): Promise<{ state: number; reason: number }>;
  getXMLDesc(flags?: number): Promise<string>;
  create(flags?: number): Promise<void>;
  destroy(flags?: number): Promise<void>;
  shutdown(flags?: number): Promise<void>;
  reboot(flags?: number): Promise<void>;
  undefine(flags?: number): Promise<void>;
  /** virDomainMigrate3; resolves to the domain on `dest`. */
  migrate(dest: Connection, flags: number, params?: MigrateParams): Promise<Domain>;
}

export interface StoragePool extends Freeable {
  readonly name: string;
  readonly uuid: string;
  getInfo(): Promise<{ state: number; capacity: number; allocation: number; available: number }>;
  getXMLDesc(flags?: number): Promise<string>;
  refresh(): Promise<void>;
  lookupVolumeByName(name: string): Promise<StorageVol>;
  listAllVolumes(): Promise<StorageVol[]>;
  createVolumeXML(xml: string, flags?: number): Promise<StorageVol>;
  createVolumeXMLFrom(xml: string, source: StorageVol, flags?: number): Promise<StorageVol>;
}

export interface StorageVol extends Freeable {
  readonly name: string;
  readonly key: string;
  getPath(): Promise<string>;
  getInfo(): Promise<{ type: number; capacity: number; allocation: number }>;
  getXMLDesc(): Promise<string>;
  /** virStorageVolWipePattern, by default with zeros. */
  wipe(algorithm?: number): Promise<void>;
  delete(flags?: number): Promise<void>;
  /** Streams zeros over [offset, offset + length) (virStorageVolUpload). */
  uploadZeros(offset: number, length: number): Promise<void>;
  /**
   * The bytes of [offset, offset + length) (virStorageVolDownload), fewer at the volume's end.
   * One stream per call, on libuv's pool: keep `length` to a few MiB.
   */
  download(offset: number, length: number): Promise<Buffer>;
  /**
   * The same through a sparse stream: the host sends only data, and the window's holes read
   * zero. `length` is how many bytes the window had; `data` its bytes, absent for a window all
   * hole. Holes are the file's own (SEEK_HOLE): data may still be zeros, and a hole may be
   * blocks allocated but unwritten.
   */
  downloadSparse(offset: number, length: number): Promise<{ length: number; data?: Buffer }>;
  /**
   * Where [offset, offset + length) holds data, through one sparse stream whose bytes are
   * dropped as they arrive (nothing held in memory): the offsets of the `window`-aligned windows
   * (counted from 0) with any data, and how many bytes were data. Holes are the file's own
   * (SEEK_HOLE): allocated but unwritten blocks read as holes.
   */
  dataWindows(
    offset: number,
    length: number,
    window: number,
  ): Promise<{ windows: number[]; dataBytes: number }>;
  /** Writes `data` at `offset` (virStorageVolUpload). One stream per call: a few MiB at most. */
  upload(offset: number, data: Buffer): Promise<void>;
}

/** The constants the binding exports, taken from libvirt's headers at build time. */
const CONSTANT_NAMES = [
  'VIR_ERR_OK',
  'VIR_ERR_INTERNAL_ERROR',
  'VIR_ERR_NO_MEMORY',
  'VIR_ERR_NO_SUPPORT',
  'VIR_ERR_UNKNOWN_HOST',
  'VIR_ERR_NO_CONNECT',
  'VIR_ERR_INVALID_CONN',
  'VIR_ERR_INVALID_ARG',
  'VIR_ERR_OPERATION_FAILED',
  'VIR_ERR_NO_KERNEL',
  'VIR_ERR_NO_OS',
  'VIR_ERR_XML_ERROR',
  'VIR_ERR_DOM_EXIST',
  'VIR_ERR_OPERATION_DENIED',
  'VIR_ERR_OPEN_FAILED',
  'VIR_ERR_XML_DETAIL',
  'VIR_ERR_SYSTEM_ERROR',
  'VIR_ERR_RPC',
  'VIR_ERR_NO_DOMAIN',
  'VIR_ERR_NO_NETWORK',
  'VIR_ERR_INVALID_MAC',
  'VIR_ERR_AUTH_FAILED',
  'VIR_ERR_NO_STORAGE_POOL',
  'VIR_ERR_NO_STORAGE_VOL',
  'VIR_ERR_OPERATION_INVALID',
  'VIR_ERR_CONFIG_UNSUPPORTED',
  'VIR_ERR_OPERATION_TIMEOUT',
  'VIR_ERR_MIGRATE_PERSIST_FAILED',
  'VIR_ERR_ARGUMENT_UNSUPPORTED',
  'VIR_ERR_OPERATION_ABORTED',
  'VIR_ERR_MIGRATE_UNSAFE',
  'VIR_ERR_OPERATION_UNSUPPORTED',
  'VIR_ERR_SSH',
  'VIR_ERR_AGENT_UNRESPONSIVE',
  'VIR_ERR_RESOURCE_BUSY',
  'VIR_ERR_ACCESS_DENIED',
  'VIR_ERR_STORAGE_VOL_EXIST',
  'VIR_ERR_XML_INVALID_SCHEMA',
  'VIR_ERR_AUTH_UNAVAILABLE',
  'VIR_ERR_LIBSSH',
  'VIR_ERR_NO_HOSTNAME',
  'VIR_FROM_NONE',
  'VIR_FROM_RPC',
  'VIR_FROM_REMOTE',
  'VIR_FROM_SSH',
  'VIR_FROM_LIBSSH',
  'VIR_FROM_TEST',
  'VIR_FROM_QEMU',
  'VIR_FROM_DOMAIN',
  'VIR_FROM_STORAGE',
  'VIR_DOMAIN_NOSTATE',
  'VIR_DOMAIN_RUNNING',
  'VIR_DOMAIN_BLOCKED',
  'VIR_DOMAIN_PAUSED',
  'VIR_DOMAIN_SHUTDOWN',
  'VIR_DOMAIN_SHUTOFF',
  'VIR_DOMAIN_CRASHED',
  'VIR_DOMAIN_PMSUSPENDED',
  'VIR_CONNECT_LIST_DOMAINS_ACTIVE',
  'VIR_CONNECT_LIST_DOMAINS_INACTIVE',
  'VIR_DOMAIN_DEFINE_VALIDATE',
  'VIR_DOMAIN_XML_SECURE',
  'VIR_DOMAIN_XML_INACTIVE',
  'VIR_DOMAIN_XML_MIGRATABLE',
  'VIR_DOMAIN_SHUTDOWN_DEFAULT',
  'VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN',
  'VIR_DOMAIN_REBOOT_DEFAULT',
  'VIR_DOMAIN_UNDEFINE_MANAGED_SAVE',
  'VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA',
  'VIR_DOMAIN_UNDEFINE_NVRAM',
  'VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA',
  'VIR_MIGRATE_LIVE',
  'VIR_MIGRATE_PEER2PEER',
  'VIR_MIGRATE_PERSIST_DEST',
  'VIR_MIGRATE_UNDEFINE_SOURCE',
  'VIR_MIGRATE_NON_SHARED_DISK',
  'VIR_MIGRATE_NON_SHARED_INC',
  'VIR_MIGRATE_OFFLINE',
  'VIR_STORAGE_VOL_WIPE_ALG_ZERO',
  'VIR_STORAGE_VOL_DELETE_NORMAL',
] as const;

export type ConstantName = (typeof CONSTANT_NAMES)[number];

interface Native {
  open(uri: string, readOnly?: boolean): Promise<Connection>;
  constants: Readonly<Record<string, number>>;
  libvirtVersion: number;
}

const ADDON = './build/Release/vagoth_libvirt.node';

function load(): Native {
  try {
    return createRequire(import.meta.url)(ADDON) as Native;
  } catch (err) {
    throw new Error(
      `the libvirt binding is not built (${ADDON} in native/libvirt): run \`npm run build:native\``,
      { cause: err },
    );
  }
}

const native = load();

function checkedConstants(
  all: Readonly<Record<string, number>>,
): Readonly<Record<ConstantName, number>> {
  const missing = CONSTANT_NAMES.filter((name) => typeof all[name] !== 'number');
  if (missing.length > 0) {
    throw new Error(
      `the libvirt binding is out of date, rebuild it: it lacks ${missing.join(', ')}`,
    );
  }
  return all as Readonly<Record<ConstantName, number>>;
}

export const constants = checkedConstants(native.constants);

/** libvirt's version as major * 1,000,000 + minor * 1,000 + release. */
export const libvirtVersion = native.libvirtVersion;

export function open(uri: string, options: { readOnly?: boolean } = {}): Promise<Connection> {
  return native.open(uri, options.readOnly ?? false);
}
