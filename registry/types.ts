/** What vagoth deploys for one NIC. `mac` is always set once the VM is claimed. */
export interface NicDefinition {
  network: string;
  ip?: string;
  mac: string;
}

/** An imported image, as a VM built from it records it. */
export interface VmImage {
  id: string;
  name: string;
  format: 'raw' | 'qcow2';
  sha256: string;
  /** The image file's bytes. */
  sizeBytes: number;
  /** The disk the image describes. */
  virtualSize: number;
  /** Direct kernel boot: the images holding the kernel and initrd, copied to the host too. */
  boot?: { kernel: VmImage; initrd?: VmImage; cmdline?: string };
}

/** A guest's own configuration, written into its cloud-init NoCloud seed. */
export interface GuestConfig {
  sshAuthorizedKeys: string[];
  /** A user-data document (at most 64 KiB), passed to cloud-init as it is. */
  userData?: string;
}

/** Where a VM may go; kept with its definition so a re-placement obeys the same rules. */
export interface PlacementConstraints {
  host?: string;
  tags?: Record<string, string>;
  antiAffinity?: string[];
  affinity?: string[];
  policy?: 'spread' | 'pack';
}

/** What to deploy: fixed while the VM is deployed. */
export interface VmDefinition {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  /**
   * The image the root disk is an overlay on (copied to the host's pool first), as it was when
   * the VM was created: a later import of another image by that name changes nothing here.
   */
  image?: VmImage;
  /** Blank disks besides the root, attached after it in this order. */
  disks?: Array<{ sizeGiB: number }>;
  /** What the guest learns from its cloud-init seed (VMs from an image only). */
  guest?: GuestConfig;
  /** Direct kernel boot, for guests without a boot loader: paths on the host. */
  boot?: { kernel: string; initrd?: string; cmdline?: string };
  nics: NicDefinition[];
  placement: PlacementConstraints;
}

/**
 * Where a VM is in its life, as the registry records it: each operation sets the state it is
 * in (with itself as `operation`), and the state it leaves the VM in.
 */
export const VM_STATES = [
  'pending',
  'placing',
  'provisioning',
  'defining',
  'starting',
  'running',
  'stopping',
  'stopped',
  'rebooting',
  'migrating',
  'reprovisioning',
  'decommissioning',
  'failed',
] as const;
export type VmState = (typeof VM_STATES)[number];

/**
 * The operation that last changed a node: a Temporal workflow run, and within a VM's entity
 * workflow the Update that carries the operation (`create` is the update that started it).
 */
export interface OperationRef {
  kind: string;
  workflowId: string;
  runId: string;
  updateId?: string;
}

export interface Vm {
  id: string;
  name: string;
  state: VmState;
  host: string | null;
  definition: VmDefinition;
  keys: string[];
  tags: Record<string, string>;
  operation: OperationRef | null;
  error: string | null;
  createdAt: string;
}

export interface HostCapacity {
  vcpus: number;
  memoryMiB: number;
}

export interface HostResources {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
}

export type HostState = 'active' | 'maintenance' | 'down';

/** The local VM manager a host runs, and so the driver vagoth reaches it with. */
export type HostDriver = 'libvirt' | 'geats';

/** What a VM may need of its host's local VM manager beyond room. */
export type DriverFeature = 'cloud-init seed' | 'direct kernel boot';

/**
 * What each local VM manager can give a VM: geats builds its guests from templates of its own
 * and reads no seed, and boots no kernel of vagoth's. The allocator places a VM only on a host
 * whose driver has every feature the VM needs, so a create is refused before it lands there.
 */
export const DRIVER_FEATURES: Record<HostDriver, readonly DriverFeature[]> = {
  libvirt: ['cloud-init seed', 'direct kernel boot'],
  geats: [],
};

export interface Host {
  id: string;
  name: string;
  driver: HostDriver;
  uri: string;
  state: HostState;
  tags: Record<string, string>;
  /** What the hardware has. */
  capacity: HostResources;
  /** Overcommit ratios: a host offers capacity x ratio. */
  ratios: { cpu: number; memory: number };
  allocated: HostResources;
  /** Room left, ratios applied. */
  free: HostResources;
  vms: number;
  createdAt: string;
}

/** How a driver reaches a host: all an activity needs to open a connection. */
export interface HostAddress {
  name: string;
  driver: HostDriver;
  uri: string;
}

export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Another node as a node refers to it (its parent). */
export interface NodeSummary {
  id: string;
  name: string;
  type: string;
}

/** Any node: a host, a VM, or whatever type a user registers (a switch, a volume, ...). */
export interface Node {
  id: string;
  name: string;
  type: string;
  tenant: string | null;
  parent: NodeSummary | null;
  /** What to deploy: fixed while the node is deployed. */
  definition: JsonObject;
  /** What vagoth learnt or decided about the node (its state, its operation, ...). */
  metadata: JsonObject;
  tags: Record<string, string>;
  /** The unique keys the node holds (`ip:10.0.0.5`, `mac:...`), sorted. */
  keys: string[];
  createdAt: string;
  updatedAt: string;
}

export const NODE_ACTIONS = ['create', 'update', 'rename', 'delete', 'claim', 'release'] as const;
export type NodeAction = (typeof NODE_ACTIONS)[number];

/** One change to a node, as the registry's triggers recorded it. */
export interface NodeEvent {
  id: string;
  nodeId: string;
  /** The node's name when the change happened. */
  nodeName: string;
  at: string;
  actor: string | null;
  /** The operation (e.g. a Temporal workflow run) that made the change, when the caller said. */
  operation: string | null;
  action: NodeAction;
  /** Only what changed; for definition, metadata and tags only the keys that differ. */
  changes: Record<string, { before: JsonValue; after: JsonValue }>;
}

/** One page of a keyset-paginated list; `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * A storage volume vagoth created for a VM. The registry records it as the VM's unique key
 * `vol:<pool>/<name>`, so no two VMs ever hold one, and a destructive call only ever acts on a
 * volume that record names.
 */
export interface VolumeRef {
  pool: string;
  name: string;
}
