/** What vagoth deploys for one NIC. `mac` is always set once the VM is claimed. */
export interface NicDefinition {
  network: string;
  ip?: string;
  mac: string;
}

/** What to deploy: fixed while the VM is deployed. */
export interface VmDefinition {
  vcpus: number;
  memoryMiB: number;
  nics: NicDefinition[];
}

export const VM_STATES = [
  'pending',
  'placing',
  'defining',
  'starting',
  'running',
  'decommissioning',
  'failed',
] as const;
export type VmState = (typeof VM_STATES)[number];

/** The Temporal workflow run that last changed a node. */
export interface OperationRef {
  kind: string;
  workflowId: string;
  runId: string;
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

export type HostState = 'active' | 'maintenance' | 'down';

export interface Host {
  id: string;
  name: string;
  driver: 'libvirt';
  uri: string;
  state: HostState;
  capacity: HostCapacity;
  allocated: HostCapacity;
  vms: number;
  createdAt: string;
}

/** How a driver reaches a host: all an activity needs to open a connection. */
export interface HostAddress {
  name: string;
  driver: 'libvirt';
  uri: string;
}
