import { z } from 'zod';
import {
  DriverError,
  type DomainInfo,
  type DomainSpec,
  type DomainState,
  type HostStatus,
  type VolumeRef,
  wantsStorage,
} from '../driver.ts';

/** Geats keeps a VM's storage itself; vagoth records it under this pool name. */
export const GEATS_POOL = 'geats';
const ROOT = 'root';

export interface GeatsDefinitionOptions {
  /** Geats's `vm_type` (a factory in the host's geats.conf): `kvm`, `lxc`, ... */
  vmType: string;
  /** Geats's storage `type` (a storage factory in geats.conf) for the root volume. */
  storageType: string;
}

/**
 * Geats names a VM's storage volume `<vm name>-<storage name>`; vagoth asks for one, named
 * `root-<vm id>`, so a later VM of the same name can never be handed this one's volume.
 */
export function geatsVolumes(spec: Pick<DomainSpec, 'id' | 'name' | 'definition'>): VolumeRef[] {
  return wantsStorage(spec.definition)
    ? [{ pool: GEATS_POOL, name: `${spec.name}-${ROOT}-${spec.id}` }]
    : [];
}

/**
 * Whether `volume` is this VM's geats storage: named for its id, or `<vm name>-root` as VMs
 * created before volumes carried the id have it recorded (their `vol:` key says it is theirs).
 */
export function isVolumeOf(spec: Pick<DomainSpec, 'id' | 'name'>, volume: VolumeRef): boolean {
  return (
    volume.pool === GEATS_POOL &&
    (volume.name === `${spec.name}-${ROOT}-${spec.id}` || volume.name === `${spec.name}-${ROOT}`)
  );
}

/** The storage entries geats is given for `volumes`: each volume's name without the VM's. */
function storageOf(
  spec: Pick<DomainSpec, 'name'>,
  volumes: VolumeRef[],
  sizeGiB: number | undefined,
  options: GeatsDefinitionOptions,
): Record<string, unknown>[] {
  return volumes.map((v) => ({
    name: v.name.slice(spec.name.length + 1),
    type: options.storageType,
    ...(sizeGiB === undefined ? {} : { size_gib: sizeGiB }),
  }));
}

/**
 * What geats must hold to remove storage it keeps for a VM it no longer knows: geats finds a
 * VM's storage only through its definition, so deprovision defines this (the VM's id and its
 * recorded storage, nothing to install) and then deprovisions it.
 */
export function storageOnlyDefinition(
  spec: Pick<DomainSpec, 'id' | 'name'>,
  volumes: VolumeRef[],
  options: GeatsDefinitionOptions,
): Record<string, unknown> {
  return {
    name: spec.name,
    description: `vagoth VM ${spec.name}, storage to remove`,
    vm_type: options.vmType,
    vagoth_id: spec.id,
    network: [],
    storage: storageOf(spec, volumes, undefined, options),
  };
}

/**
 * The definition geats stores and hands back: its own keys (name, vm_type, network with
 * hwaddr/ipaddr/bridge, storage, template, and `ram` in MiB as its LXC type reads it) plus
 * `vcpus` and `vagoth_id`, the marker that tells vagoth's VMs from the host's others.
 */
export function toGeatsDefinition(
  spec: DomainSpec,
  volumes: VolumeRef[],
  options: GeatsDefinitionOptions,
): Record<string, unknown> {
  const d = spec.definition;
  if (d.boot) {
    throw new DriverError('unsupported', `define ${spec.name}: geats has no direct kernel boot`);
  }
  return {
    name: spec.name,
    description: `vagoth VM ${spec.name}`,
    vm_type: options.vmType,
    vagoth_id: spec.id,
    vcpus: d.vcpus,
    ram: d.memoryMiB,
    network: d.nics.map((nic, i) => ({
      name: `eth${i}`,
      hwaddr: nic.mac,
      bridge: nic.network,
      ...(nic.ip ? { ipaddr: nic.ip } : {}),
    })),
    storage: storageOf(spec, volumes, d.diskGiB, options),
    ...(d.image ? { template: d.image.name } : {}),
  };
}

/** Geats's states are pairs: the state, and a sub-state (`paused`) or the state it is heading to. */
export function domainState(pair: string[]): DomainState {
  const [state = '', sub = ''] = pair.map((s) => s.toLowerCase());
  switch (state) {
    case 'running':
    case 'on':
      if (sub === 'paused') return 'paused';
      if (sub === 'stopped' || sub === 'shutdown' || sub === 'stopping') return 'shutting-down';
      return 'running';
    case 'stopped':
    case 'off':
    case 'shutoff':
      return 'stopped';
    case 'paused':
      return 'paused';
    case 'crashed':
      return 'crashed';
    default:
      return 'other';
  }
}

const count = z.number().int().nonnegative().catch(0);

// VMs vagoth did not define may carry anything: a field that is not what vagoth writes reads as absent.
const vmSchema = z.object({
  definition: z
    .looseObject({
      vagoth_id: z.string().nullable().catch(null).default(null),
      vcpus: count.default(0),
      ram: count.default(0),
      network: z
        .array(z.looseObject({ hwaddr: z.string().optional().catch(undefined) }).catch({}))
        .catch([])
        .default([]),
    })
    .catch({ vagoth_id: null, vcpus: 0, ram: 0, network: [] }),
  state: z.array(z.string()).catch([]).default([]),
});

const kB = z.number().nonnegative();
const statusSchema = z.object({
  vms: z.record(z.string(), vmSchema),
  status: z.looseObject({
    mem_total: kB,
    mem_free: kB,
    mem_buffers: kB.catch(0).default(0),
    mem_cached: kB.catch(0).default(0),
    load_avg: z.tuple([z.number(), z.number(), z.number()]).nullable().catch(null).default(null),
  }),
});

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  throw new DriverError(
    'rejected',
    `${what}: the agent's answer is not what geats sends: ${problems.join('; ')}`,
    { code: 'BadAnswer' },
  );
}

function toInfo(name: string, vm: z.infer<typeof vmSchema>): DomainInfo {
  return {
    name,
    state: domainState(vm.state),
    vagothId: vm.definition.vagoth_id,
    vcpus: vm.definition.vcpus,
    memoryMiB: vm.definition.ram,
    macs: vm.definition.network.flatMap((n) => (n.hwaddr ? [n.hwaddr.toLowerCase()] : [])),
  };
}

export function domainInfo(name: string, data: unknown): DomainInfo {
  return toInfo(name, parse(vmSchema, data, `info ${name}`));
}

/**
 * Geats reads memory from /proc/meminfo, in kB. It reports no CPU count: a geats host's
 * vCPUs are declared when it is registered, so `capacity.vcpus` here is 0.
 */
export function hostStatus(data: unknown): HostStatus {
  const { vms, status } = parse(statusSchema, data, 'status');
  return {
    capacity: { vcpus: 0, memoryMiB: Math.floor(status.mem_total / 1024) },
    freeMemoryMiB: Math.floor((status.mem_free + status.mem_buffers + status.mem_cached) / 1024),
    load: status.load_avg,
    domains: Object.entries(vms).map(([name, vm]) => toInfo(name, vm)),
  };
}
