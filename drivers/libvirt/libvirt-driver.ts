import { open as openLibvirt, type Connection, type Domain } from '../../native/libvirt/index.ts';
import type { HostAddress, VmImage } from '../../registry/types.ts';
import {
  CallbackFailed,
  DriverError,
  type DeprovisionOptions,
  type Driver,
  type DomainInfo,
  type DomainSpec,
  type DomainState,
  type HostStatus,
  type MigrateOptions,
  type MigrateResult,
  type ProgressOptions,
  type ProvisionOptions,
  type ShutdownOptions,
  type VolumeRef,
  wantsStorage,
} from '../driver.ts';
import { admitLibvirtUri, HostUriError, type HostUriPolicy } from '../host-uri.ts';
import { connections, type ConnectionLease, type ConnectionRegistry } from './connections.ts';
import { domainXml, vagothIdOf, type RootOverlay } from './domain-xml.ts';
import {
  describe,
  isActive,
  lookup,
  powerOff,
  powerOn,
  shutDown,
  stateOf,
  undefineDomain,
  withDomain,
} from './domains.ts';
import { classify } from './errors.ts';
import { copyDisks, diskPlan, localVolumes } from './disk-move.ts';
import { migrateDomain } from './migrate.ts';
import {
  checkOwned,
  freeing,
  layoutNames,
  lookupPool,
  locateVolumes,
  PROVISION_STEP,
  provisionedBefore,
  provisionVolume,
  volumeLayout,
  type ImageBase,
  type LocatedVolume,
  type VolumeLayout,
} from './volumes.ts';
import { copyImage, imagePath, imageVolumeName, removeImage } from './image-cache.ts';
import { wipeAndDelete, type WipeMethod } from './wipe.ts';
import { hostStatus } from './status.ts';

export interface LibvirtDriverOptions {
  uri: string;
  /** The host's storage pools vagoth may use; new volumes go to the first. Default `['vagoth']`. */
  pools?: string[];
  /**
   * Those of `pools` that every host reaches as the same storage (NFS, Ceph, a SAN): a move
   * neither copies, rebuilds nor wipes their volumes. Default none.
   */
  sharedPools?: string[];
  /** Domain type for generated XML; by default `test` for test:// URIs and `kvm` otherwise. */
  domainType?: string;
  /** Log each guest's serial console to `<dir>/<vm id>.log` on the host. */
  consoleLogDir?: string;
  /** Longest pause between two state polls while a shutdown is awaited. Default 500 ms. */
  pollMs?: number;
  /** Where connections are shared; the process-wide registry by default. */
  connections?: ConnectionRegistry;
  /**
   * How deprovision zeroes a volume (wipe.ts): `stream` (the default) streams zeros over every
   * byte, by offset, resumed after a crash; `libvirt` uses libvirt's wipe where the pool has one
   * (silent until done, so a wipe cut short starts over; on a directory pool it truncates a
   * sparse file rather than overwriting it). Either way a sample is read back before deletion.
   */
  wipe?: WipeMethod;
  /** Cap on streamed zeros in MiB/s, so a wipe leaves the host's guests some disk; 0: none. */
  wipeMiBPerSecond?: number;
  /** Cap on a cold move's disk copy in MiB/s, for the same reason; 0: none. */
  copyMiBPerSecond?: number;
  /**
   * Checked before the first connection to this host or a migration target (the socket and
   * simulated host files it names resolved); unset: any URI (a test's own driver).
   */
  hostUris?: HostUriPolicy;
}

const ANY_URI: HostUriPolicy = {
  geatsAgents: [],
  simulatedHosts: true,
  simulatedHostDirs: ['/'],
  libvirtSocketDirs: ['/'],
};

const HOST_UUID = /<host>\s*<uuid>([0-9a-fA-F-]{32,36})<\/uuid>/;

async function identify(
  conn: Connection,
  uri: string,
  admit: (uri: string) => Promise<string>,
): Promise<string> {
  // A binding built before getCapabilities existed: say how to mend it, not "not a function".
  if (typeof conn.getCapabilities !== 'function') {
    throw new DriverError(
      'unsupported',
      'the libvirt binding is out of date: npm run build:native',
    );
  }
  const uuid = HOST_UUID.exec(await conn.getCapabilities())?.[1];
  return uuid ? `libvirt:${uuid.toLowerCase()}` : `uri:${await admit(uri)}`;
}

export class LibvirtDriver implements Driver {
  readonly #uri: string;
  readonly #pools: readonly string[];
  readonly #sharedPools: readonly string[];
  readonly #copyBytesPerSecond: number;
  readonly #domainType: string;
  readonly #consoleLogDir: string | undefined;
  readonly #pollMs: number;
  readonly #wipe: WipeMethod;
  readonly #wipeBytesPerSecond: number;
  readonly #registry: ConnectionRegistry;
  readonly #lease: ConnectionLease;
  /** The monitor's polls: a connection of their own, but on a simulated host (see status). */
  readonly #pollLease: ConnectionLease;
  readonly #hostUris: HostUriPolicy | undefined;
  /** Canonical URIs the policy admitted, by URI as given. */
  readonly #admitted = new Map<string, Promise<string>>();
  /** Hosts this driver migrated to, held until close so their connections stay shared. */
  readonly #peers = new Map<string, ConnectionLease>();

  constructor(options: LibvirtDriverOptions) {
    const pools = options.pools ?? ['vagoth'];
    if (pools.length === 0 || pools.some((p) => typeof p !== 'string' || p === '')) {
      throw new Error('LibvirtDriverOptions.pools: give at least one pool name, none empty');
    }
    this.#uri = options.uri;
    this.#pools = [...pools];
    this.#sharedPools = [...(options.sharedPools ?? [])];
    const copyRate = options.copyMiBPerSecond ?? 0;
    if (!Number.isFinite(copyRate) || copyRate < 0) {
      throw new Error('LibvirtDriverOptions.copyMiBPerSecond: give a number >= 0');
    }
    this.#copyBytesPerSecond = copyRate * 1024 ** 2;
    this.#domainType = options.domainType ?? (options.uri.startsWith('test:') ? 'test' : 'kvm');
    this.#consoleLogDir = options.consoleLogDir;
    this.#pollMs = options.pollMs ?? 500;
    const rate = options.wipeMiBPerSecond ?? 0;
    if (!Number.isFinite(rate) || rate < 0) {
      throw new Error('LibvirtDriverOptions.wipeMiBPerSecond: give a number >= 0');
    }
    this.#wipe = options.wipe ?? 'stream';
    this.#wipeBytesPerSecond = rate * 1024 ** 2;
    this.#registry = options.connections ?? connections;
    this.#lease = this.#registry.lease(options.uri);
    // A second connection to a test:///<file> URI would be a second, empty hypervisor; and the
    // test driver runs in this process, with no daemon queue to wait in.
    this.#pollLease = this.#simulated ? this.#lease : this.#registry.lease(options.uri, 'poll');
    this.#hostUris = options.hostUris;
  }

  /** The URI's canonical spelling, once the policy (if any) admits it; opens nothing. */
  #admit(uri: string): Promise<string> {
    let admitted = this.#admitted.get(uri);
    if (!admitted) {
      const policy = this.#hostUris;
      admitted = policy
        ? admitLibvirtUri(uri, policy).catch((err: unknown) => {
            if (!(err instanceof HostUriError)) throw err;
            throw new DriverError('rejected', `uri: ${err.message}`, { code: 'UriRefused' });
          })
        : // No policy (a test's own driver): nothing is refused, the spelling is still one.
          admitLibvirtUri(uri, ANY_URI).catch(() => uri);
      this.#admitted.set(uri, admitted);
    }
    return admitted;
  }

  /**
   * Which hypervisor this is: the UUID libvirt reports for the host, or where it reports none
   * (libvirt's test driver) the URI's canonical spelling, its files' real paths included.
   * Two hosts with one identity are one hypervisor.
   */
  hostId(): Promise<string> {
    return this.#call('identify the host', (conn) =>
      identify(conn, this.#uri, (u) => this.#admit(u)),
    );
  }

  /** libvirt's test driver: volumes hold no bytes and the host reports no free memory. */
  get #simulated(): boolean {
    return this.#uri.startsWith('test:');
  }

  /** Runs one call; an unreachable error drops the connection so the next call reopens it. */
  async #call<T>(
    what: string,
    fn: (conn: Connection) => Promise<T>,
    lease: ConnectionLease = this.#lease,
  ): Promise<T> {
    await this.#admit(this.#uri);
    const conn = await lease.get();
    try {
      return await fn(conn);
    } catch (err) {
      if (err instanceof CallbackFailed) throw err.error;
      const e = classify(err, what);
      if (e.kind === 'unreachable') lease.drop(conn);
      throw e;
    }
  }

  async #required(conn: Connection, name: string): Promise<Domain> {
    const domain = await lookup(conn, name);
    if (!domain) throw new DriverError('not-found', `${name}: no such domain on ${this.#uri}`);
    return domain;
  }

  #xml(spec: DomainSpec, overlay: RootOverlay | null, desired?: 'running' | 'stopped'): string {
    return domainXml(spec, {
      domainType: this.#domainType,
      ...(this.#consoleLogDir ? { consoleLogDir: this.#consoleLogDir } : {}),
      ...(desired ? { desired } : {}),
      ...(overlay ? { overlay } : {}),
    });
  }

  /**
   * The host's copy of the VM's image, when it has one: the base of its root disk. Null for a
   * VM from no image; a VM's image missing from the host is refused.
   */
  async #base(conn: Connection, image: VmImage | undefined): Promise<ImageBase | null> {
    if (!image) return null;
    const ref = this.imageVolume(image);
    const found = await imagePath(conn, ref);
    if (!found) {
      throw new DriverError(
        'rejected',
        `definition.image: image ${image.name} is not copied to ${this.#uri}`,
      );
    }
    return {
      ...found,
      format: image.format,
      vol: () => freeing(lookupPool(conn, ref.pool), (pool) => pool.lookupVolumeByName(ref.name)),
    };
  }

  /**
   * The domain's XML on this host: the root disk an overlay on the host's copy of its image
   * (or plain), and a kernel its image boots taken from the host's copies of the kernel and
   * initrd images.
   */
  async #placedXml(conn: Connection, spec: DomainSpec) {
    const { image } = spec.definition;
    const base = await this.#base(conn, image);
    const overlay = base?.fileBacked ? { backing: base.path, format: base.format } : null;
    let placed = spec;
    if (image?.boot) {
      const { kernel, initrd, cmdline } = image.boot;
      const kernelBase = await this.#base(conn, kernel);
      const initrdBase = initrd ? await this.#base(conn, initrd) : null;
      const boot = {
        kernel: kernelBase!.path,
        ...(initrdBase ? { initrd: initrdBase.path } : {}),
        ...(cmdline !== undefined ? { cmdline } : {}),
      };
      placed = { ...spec, definition: { ...spec.definition, boot } };
    }
    return (desired?: 'running' | 'stopped') => this.#xml(placed, overlay, desired);
  }

  /**
   * The monitor's poll, on a connection of its own: however many long calls (wipes, clones,
   * migrations) the host's main connection carries, libvirtd answers this one at once.
   */
  status(): Promise<HostStatus> {
    return this.#call('status', (conn) => hostStatus(conn, this.#simulated), this.#pollLease);
  }

  info(name: string): Promise<DomainInfo | null> {
    return this.#call(`info ${name}`, async (conn) =>
      withDomain(await lookup(conn, name), async (d) => (d ? describe(d) : null)),
    );
  }

  volumesFor(spec: Pick<DomainSpec, 'id' | 'name' | 'definition'>): VolumeRef[] {
    if (!wantsStorage(spec.definition)) return [];
    return layoutNames(spec.id, volumeLayout(spec.definition)).map((name) => ({
      pool: this.#pools[0]!,
      name,
    }));
  }

  imageVolume(image: VmImage): VolumeRef {
    return { pool: this.#pools[0]!, name: imageVolumeName(image) };
  }

  copyImage(image: VmImage, file: string, options: ProgressOptions = {}): Promise<void> {
    return this.#call(`copy image ${image.name}`, (conn) =>
      copyImage(conn, this.imageVolume(image), image, file, {
        ...options,
        simulated: this.#simulated,
      }),
    );
  }

  hasImage(image: VmImage): Promise<boolean> {
    return this.#call(
      `find image ${image.name}`,
      async (conn) => (await imagePath(conn, this.imageVolume(image))) !== null,
    );
  }

  removeImage(image: VmImage, where: VolumeRef = this.imageVolume(image)): Promise<void> {
    return this.#call(`remove image ${image.name}`, (conn) => removeImage(conn, where, image));
  }

  provision(spec: DomainSpec, options: ProvisionOptions = {}): Promise<VolumeRef[]> {
    const refs = spec.volumes ?? this.volumesFor(spec);
    return this.#call(`provision ${spec.name}`, async (conn) => {
      checkOwned(spec.id, refs, this.#pools);
      // A volume that is there but that no earlier attempt reported done may be one an attempt
      // was creating when it was lost (a clone cut short): it is built again. Never while the
      // VM's domain is on this host: then the volume is in use (a migration that got further
      // than its last heartbeat said), and kept.
      const reported = provisionedBefore(options.resumeFrom, refs.length);
      const inUse =
        reported < refs.length &&
        (await withDomain(await lookup(conn, spec.name), async (d) => d !== null));
      const layouts = layoutOf(spec, refs);
      const base = await this.#base(conn, spec.definition.image);
      for (const [i, ref] of refs.entries()) {
        options.signal?.throwIfAborted();
        // A shared pool's volume is the VM's disk wherever it runs: never built again.
        const keep = i < reported || inUse || this.#sharedPools.includes(ref.pool);
        // What a lost attempt left holds this VM's bytes (a part of its image, of its disk on
        // the way here): wiped as deprovision wipes, not merely deleted, before it is built again.
        if (!keep) await this.#wipeLeftover(conn, spec.id, ref, options);
        await provisionVolume(conn, ref, layouts[i]!, {
          base,
          ...(options.seed ? { seed: options.seed } : {}),
        });
        options.onProgress?.({ step: PROVISION_STEP, done: i + 1, total: refs.length });
      }
      return refs;
    });
  }

  /**
   * Wipes and deletes `ref` if it is there, as deprovision would: its progress is the step's
   * (a retry after a crash goes on from it, and then builds the volume again).
   */
  async #wipeLeftover(conn: Connection, vmId: string, ref: VolumeRef, options: ProvisionOptions) {
    const located = await locateVolumes(conn, vmId, [ref], this.#pools);
    try {
      await this.#wipeEach(located, options);
    } finally {
      for (const v of located) v.vol.free();
    }
  }

  /** Wipes, checks and deletes each of `located`, as this host is configured to. */
  async #wipeEach(located: LocatedVolume[], options: ProvisionOptions): Promise<void> {
    for (const v of located) {
      options.signal?.throwIfAborted();
      await wipeAndDelete(v, {
        ...options,
        simulated: this.#simulated,
        method: this.#wipe,
        bytesPerSecond: this.#wipeBytesPerSecond,
      });
    }
  }

  define(spec: DomainSpec): Promise<void> {
    return this.#call(`define ${spec.name}`, async (conn) => {
      // Attaching another VM's volume would hand its data over: the same rule as deleting one.
      checkOwned(spec.id, spec.volumes ?? [], this.#pools);
      const xml = (await this.#placedXml(conn, spec))();
      await withDomain(await lookup(conn, spec.name), async (existing) => {
        if (existing && vagothIdOf(await existing.getXMLDesc()) !== spec.id) {
          throw new DriverError(
            'not-ours',
            `define ${spec.name}: the host has another domain of that name`,
          );
        }
      });
      // Redefining vagoth's own domain is idempotent: same name, same uuid, same XML.
      (await conn.defineDomainXML(xml)).free();
    });
  }

  start(name: string): Promise<DomainState> {
    return this.#call(`start ${name}`, async (conn) =>
      withDomain(await this.#required(conn, name), async (d) => {
        await powerOn(d);
        return stateOf(d);
      }),
    );
  }

  stop(name: string): Promise<void> {
    return this.#call(`stop ${name}`, async (conn) =>
      withDomain(await lookup(conn, name), async (d) => {
        if (d) await powerOff(d);
      }),
    );
  }

  shutdown(name: string, options: ShutdownOptions): Promise<void> {
    return this.#call(`shutdown ${name}`, async (conn) => {
      if (!Number.isFinite(options.timeoutMs) || options.timeoutMs < 0) {
        throw new DriverError('rejected', `shutdown ${name}: timeoutMs must be a number >= 0`);
      }
      await withDomain(await lookup(conn, name), async (d) => {
        if (d) await shutDown(d, { ...options, pollMs: this.#pollMs });
      });
    });
  }

  reboot(name: string): Promise<void> {
    return this.#call(`reboot ${name}`, async (conn) =>
      withDomain(await this.#required(conn, name), (d) => d.reboot()),
    );
  }

  migrate(
    spec: DomainSpec,
    target: HostAddress,
    options: MigrateOptions = {},
  ): Promise<MigrateResult> {
    return this.#call(`migrate ${spec.name} to ${target.name}`, async (source) => {
      await this.#admit(target.uri);
      const lease = this.#peers.get(target.uri) ?? this.#registry.lease(target.uri);
      this.#peers.set(target.uri, lease);
      const conn = await lease.get();
      // Two names (or spellings) of one hypervisor: a cold move would undefine the domain it
      // just defined, and a wipe would follow. Decided on what the hosts say they are.
      if ((await this.hostId()) === (await identify(conn, target.uri, (u) => this.#admit(u)))) {
        throw new DriverError('rejected', `migrate ${spec.name}: ${target.name} is this host`);
      }
      try {
        // The root overlay's base, and the kernel, are the target's own copies. A live move
        // keeps the source's definition, so where they lie elsewhere there it moves cold.
        const targetXml = await this.#placedXml(conn, spec);
        const samePaths = (await this.#placedXml(source, spec))('running') === targetXml('running');
        if (!samePaths && options.liveOnly) {
          throw new DriverError(
            'rejected',
            `migrate ${spec.name}: its image lies at another path on ${target.name}, so it cannot move live`,
          );
        }
        return await migrateDomain({
          source,
          target: conn,
          spec,
          targetXml,
          options: samePaths ? options : { ...options, live: false },
          disks: diskPlan(spec.volumes ?? [], this.#sharedPools),
          copyDisks: (progress) =>
            copyDisks(
              {
                source,
                target: conn,
                vmId: spec.id,
                volumes: spec.volumes ?? [],
                pools: this.#pools,
                sharedPools: this.#sharedPools,
                simulated: this.#simulated,
                bytesPerSecond: this.#copyBytesPerSecond,
                ...(this.#simulated
                  ? {}
                  : {
                      openLane: (side) => openLibvirt(side === 'source' ? this.#uri : target.uri),
                    }),
              },
              progress,
            ),
        });
      } catch (err) {
        const e = classify(err, `migrate ${spec.name} to ${target.name}`);
        // Which host stopped answering is unknown: reopen both rather than keep a dead one.
        if (e.kind === 'unreachable') lease.drop(conn);
        throw e;
      }
    });
  }

  undefine(spec: Pick<DomainSpec, 'id' | 'name'>): Promise<void> {
    return this.#call(`undefine ${spec.name}`, (conn) => this.#undefine(conn, spec));
  }

  async #undefine(
    conn: Connection,
    spec: Pick<DomainSpec, 'id' | 'name'>,
    options: DeprovisionOptions = {},
  ): Promise<void> {
    await withDomain(await lookup(conn, spec.name), async (d) => {
      if (!d) return;
      const info = await describe(d);
      // Destructive: only ever on the domain vagoth created for this very VM.
      if (info.vagothId !== spec.id) {
        // Where the VM moved away from, a domain of its name that vagoth did not make for it
        // is someone else's: left alone, while the volumes (checked as this VM's) go.
        if (options.movedAway) return;
        throw new DriverError(
          'not-ours',
          `undefine ${spec.name}: the domain was not created by vagoth for this VM`,
        );
      }
      if (isActive(info.state)) {
        if (options.onlyStopped) {
          throw new DriverError('rejected', `${spec.name} runs here: its volumes are kept`);
        }
        await powerOff(d);
      }
      await undefineDomain(d);
    });
    if (!options.onlyStopped) return;
    // Started between the look and the undefine, it stays as a transient domain: its volumes
    // are then in use, and kept.
    await withDomain(await lookup(conn, spec.name), async (d) => {
      if (d && (await describe(d)).vagothId === spec.id) {
        throw new DriverError('rejected', `${spec.name} runs here: its volumes are kept`);
      }
    });
  }

  deprovision(
    spec: Pick<DomainSpec, 'id' | 'name'> & { volumes: VolumeRef[] },
    options: DeprovisionOptions = {},
  ): Promise<void> {
    return this.#call(`deprovision ${spec.name}`, async (conn) => {
      const volumes = options.movedAway
        ? localVolumes(spec.volumes, this.#sharedPools)
        : spec.volumes;
      // Every volume is checked before anything is undefined, wiped or deleted.
      const located = await locateVolumes(conn, spec.id, volumes, this.#pools);
      try {
        await this.#undefine(conn, spec, options);
        await this.#wipeEach(located, options);
      } finally {
        for (const v of located) v.vol.free();
      }
    });
  }

  async close(): Promise<void> {
    const leases = [this.#lease, this.#pollLease, ...this.#peers.values()];
    this.#peers.clear();
    await Promise.allSettled(leases.map((l) => l.release()));
  }
}

/** Each recorded volume's layout, matched by name: a volume the definition does not make is refused. */
function layoutOf(spec: DomainSpec, refs: VolumeRef[]): VolumeLayout[] {
  const layout = volumeLayout(spec.definition);
  const names = layoutNames(spec.id, layout);
  return refs.map((ref) => {
    const at = names.indexOf(ref.name);
    if (at < 0) {
      throw new DriverError(
        'rejected',
        `volume ${ref.name} is not one ${spec.name}'s definition makes`,
      );
    }
    return layout[at]!;
  });
}
