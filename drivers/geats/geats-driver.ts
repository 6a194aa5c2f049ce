import { setTimeout as sleep } from 'node:timers/promises';
import type { HostAddress } from '../../registry/types.ts';
import {
  DriverError,
  type DomainInfo,
  type DomainSpec,
  type DeprovisionOptions,
  type DomainState,
  type Driver,
  type HostStatus,
  type MigrateOptions,
  type MigrateResult,
  type ProgressOptions,
  type ShutdownOptions,
  type VolumeRef,
} from '../driver.ts';
import {
  domainInfo,
  geatsVolumes,
  hostStatus,
  isVolumeOf,
  storageOnlyDefinition,
  toGeatsDefinition,
  type GeatsDefinitionOptions,
} from './definition.ts';
import { encodeRequest, readAnswer, type GeatsAction, type GeatsRequestData } from './protocol.ts';
import type { Transport } from './transport.ts';

export interface GeatsDriverOptions extends Partial<GeatsDefinitionOptions> {
  transport: Transport;
  /** One agent run; 15 s by default. */
  timeoutMs?: number;
  /** Runs that copy or wipe storage (provision, deprovision, migrate); 10 min by default. */
  longTimeoutMs?: number;
  /**
   * A driver for another geats host, to see and prepare a migration's target; without it,
   * migrate asks the agent to move the VM and nothing more.
   */
  peer?: (host: HostAddress) => GeatsDriver;
}

interface CallOptions {
  long?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

const notFound = (err: unknown) => err instanceof DriverError && err.kind === 'not-found';

/**
 * A geats host, through its agent: one JSON request per run (bin/mcagent.py, vagoth's
 * geatslocal driver). Geats keeps each VM's definition; vagoth's id in it (`vagoth_id`) is
 * what lets destructive calls touch only the VMs vagoth created.
 */
export class GeatsDriver implements Driver {
  /** Geats's migrate takes the VM's storage along: nothing is provisioned on the target. */
  readonly migrateMovesStorage = true;
  readonly #t: Transport;
  readonly #timeoutMs: number;
  readonly #longTimeoutMs: number;
  readonly #definition: GeatsDefinitionOptions;
  readonly #peer: ((host: HostAddress) => GeatsDriver) | undefined;

  constructor(options: GeatsDriverOptions) {
    this.#t = options.transport;
    this.#peer = options.peer;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#longTimeoutMs = options.longTimeoutMs ?? 600_000;
    this.#definition = {
      vmType: options.vmType ?? 'kvm',
      storageType: options.storageType ?? 'local',
    };
  }

  async #call(action: GeatsAction, data: GeatsRequestData, o: CallOptions = {}): Promise<unknown> {
    const what = `${action}${data.vm_name ? ` ${data.vm_name}` : ''} on ${this.#t.uri}`;
    const timeoutMs = o.timeoutMs ?? (o.long ? this.#longTimeoutMs : this.#timeoutMs);
    const out = await this.#t.run(encodeRequest(action, data), {
      timeoutMs,
      signal: o.signal,
      key: data.vm_name ?? '',
    });
    return readAnswer(what, out);
  }

  /** For actions where a VM already gone is success; false when it was gone. */
  async #unlessGone(action: GeatsAction, name: string, o: CallOptions = {}): Promise<boolean> {
    try {
      await this.#call(action, { vm_name: name }, o);
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  #mustBeOurs(info: DomainInfo, id: string, action: string): void {
    if (info.vagothId !== id) {
      throw new DriverError(
        'not-ours',
        `${action} ${info.name} on ${this.#t.uri}: the host's VM of that name was not created by vagoth for this VM`,
      );
    }
  }

  #checkVolumes(spec: Pick<DomainSpec, 'id' | 'name'>, volumes: VolumeRef[], action: string): void {
    const foreign = volumes.find((v) => !isVolumeOf(spec, v));
    if (foreign) {
      throw new DriverError(
        'not-ours',
        `${action} ${spec.name}: volume ${foreign.pool}/${foreign.name} is not this VM's geats storage`,
      );
    }
  }

  /** Which agent this is (its real path, or its SSH address): one identity, one hypervisor. */
  hostId(): Promise<string> {
    return this.#t.identity();
  }

  async status(): Promise<HostStatus> {
    return hostStatus(await this.#call('status', {}));
  }

  async info(name: string): Promise<DomainInfo | null> {
    try {
      return domainInfo(name, await this.#call('info', { vm_name: name }));
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  volumesFor(spec: Pick<DomainSpec, 'id' | 'name' | 'definition'>): VolumeRef[] {
    return geatsVolumes(spec);
  }

  /** Geats's define and provision both create the VM and its storage; only provision installs the template. */
  async #create(
    spec: DomainSpec,
    action: 'define' | 'provision',
    o: CallOptions,
  ): Promise<VolumeRef[]> {
    const volumes = spec.volumes ?? this.volumesFor(spec);
    this.#checkVolumes(spec, volumes, action);
    const definition = toGeatsDefinition(spec, volumes, this.#definition);
    const existing = await this.info(spec.name);
    // A VM's definition is fixed while it is deployed: vagoth's own VM is already what was asked.
    if (existing) {
      this.#mustBeOurs(existing, spec.id, action);
      return volumes;
    }
    try {
      await this.#call(action, { vm_name: spec.name, definition }, o);
    } catch (err) {
      const raced = err instanceof DriverError && err.code === 'AlreadyExistsException';
      const now = raced ? await this.info(spec.name) : null;
      if (!now) throw err;
      this.#mustBeOurs(now, spec.id, action);
    }
    return volumes;
  }

  async provision(spec: DomainSpec, options: ProgressOptions = {}): Promise<VolumeRef[]> {
    // geats builds a VM from a template of its own and reads no cloud-init seed: what the
    // guest was to be told would be silently lost.
    const guest = spec.definition.guest;
    if (guest && (guest.sshAuthorizedKeys.length > 0 || guest.userData !== undefined)) {
      throw new DriverError(
        'unsupported',
        `${spec.name}: geats hosts take no cloud-init seed (sshAuthorizedKeys, userData)`,
      );
    }
    options.onProgress?.({ step: 'provision', done: 0, total: 1 });
    const volumes = await this.#create(spec, 'provision', { long: true, signal: options.signal });
    options.onProgress?.({ step: 'provision', done: 1, total: 1 });
    return volumes;
  }

  async define(spec: DomainSpec): Promise<void> {
    await this.#create(spec, 'define', {});
  }

  async start(name: string): Promise<DomainState> {
    await this.#call('start', { vm_name: name });
    const info = await this.info(name);
    if (!info) throw new DriverError('not-found', `start ${name}: the VM vanished from the host`);
    return info.state;
  }

  async stop(name: string): Promise<void> {
    await this.#unlessGone('stop', name);
  }

  /** Null once the VM is stopped or gone; its state if it is still up at the deadline. */
  async #waitStopped(name: string, deadline: number): Promise<DomainState | null> {
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      const info = await this.info(name);
      if (!info || info.state === 'stopped') return null;
      const left = deadline - Date.now();
      if (left <= 0) return info.state;
      await sleep(Math.min(wait, left));
    }
  }

  async shutdown(name: string, options: ShutdownOptions): Promise<void> {
    const timeoutMs = Math.max(this.#timeoutMs, options.timeoutMs);
    if (!(await this.#unlessGone('shutdown', name, { timeoutMs }))) return;
    const state = await this.#waitStopped(name, Date.now() + options.timeoutMs);
    if (state === null) return;
    if (options.force) return this.stop(name);
    throw new DriverError(
      'timeout',
      `shutdown ${name} on ${this.#t.uri}: still ${state} after ${options.timeoutMs} ms`,
    );
  }

  async reboot(name: string): Promise<void> {
    await this.#call('reboot', { vm_name: name });
  }

  /**
   * Asks geats to move the VM, its storage with it (its `migrate` action): a host whose geats
   * cannot (NotImplementedError, as geats's own VM types answer) refuses, `unsupported`, before
   * anything moved, and the VM stays where it was with its disk. Never a blank disk in its place.
   */
  async migrate(
    spec: DomainSpec,
    target: HostAddress,
    options: MigrateOptions = {},
  ): Promise<MigrateResult> {
    if (target.driver !== 'geats') {
      throw new DriverError(
        'unsupported',
        `migrate ${spec.name}: ${target.name} is not a geats host`,
      );
    }
    if (options.liveOnly) {
      throw new DriverError(
        'unsupported',
        `migrate ${spec.name}: geats does not promise live migration`,
      );
    }
    const peer = this.#peer?.(target);
    try {
      const info = await this.info(spec.name);
      if (!info) {
        // A retry after geats moved it (the answer was lost): the target holds it now.
        if ((await peer?.info(spec.name))?.vagothId === spec.id) return { live: false };
        throw new DriverError('not-found', `migrate ${spec.name}: no such VM on ${this.#t.uri}`);
      }
      this.#mustBeOurs(info, spec.id, 'migrate');
      if (peer) await this.#clearTarget(spec, peer, target);
      options.onProgress?.({ step: 'migrate', done: 0, total: 1 });
      // Geats names hosts as vagoth does (the host's name), as its mcollective identity did.
      const data = await this.#call(
        'migrate',
        { vm_name: spec.name, vm_destination: target.name },
        { long: true, signal: options.signal },
      );
      options.onProgress?.({ step: 'migrate', done: 1, total: 1 });
      const live =
        typeof data === 'object' && data !== null && 'live' in data && data.live === true;
      return { live };
    } finally {
      await peer?.close();
    }
  }

  /**
   * A move begun by a worker before `migrateMovesStorage` provisioned its target first
   * (activities/vm.ts migrateDomain): on a geats target that is a VM of the same name on a
   * blank disk, which geats's migrate, bringing the VM's own disk, would collide with. While
   * the source still holds the VM that copy is not the VM's disk (geats storage is the host's
   * own): remove it. Old path: goes once no move begun by such a worker can be retried.
   */
  async #clearTarget(spec: DomainSpec, peer: GeatsDriver, target: HostAddress): Promise<void> {
    const there = await peer.info(spec.name);
    if (!there) return;
    if (there.vagothId !== spec.id) {
      throw new DriverError(
        'not-ours',
        `migrate ${spec.name}: ${target.name} holds another VM of that name`,
      );
    }
    await peer.deprovision({ ...spec, volumes: spec.volumes ?? this.volumesFor(spec) });
  }

  async undefine(spec: Pick<DomainSpec, 'id' | 'name'>): Promise<void> {
    const info = await this.info(spec.name);
    if (!info) return;
    this.#mustBeOurs(info, spec.id, 'undefine');
    // The protocol does not say that undefine stops a running VM: power it off first.
    if (info.state !== 'stopped') await this.#unlessGone('stop', spec.name);
    await this.#unlessGone('undefine', spec.name);
  }

  /**
   * Undefines the VM and removes its storage, whether or not geats still knows the VM. Geats
   * finds storage only through a VM's definition, keeps it on undefine, and answers success for
   * an unknown VM's deprovision: so a VM already forgotten (decommission undefines first) is
   * defined again holding only its recorded storage, then deprovisioned. Success means geats
   * no longer holds the VM nor, as far as its agent says, that storage.
   */
  async deprovision(
    spec: Pick<DomainSpec, 'id' | 'name'> & { volumes: VolumeRef[] },
    options: DeprovisionOptions = {},
  ): Promise<void> {
    this.#checkVolumes(spec, spec.volumes, 'deprovision');
    const info = await this.info(spec.name);
    if (info) this.#mustBeOurs(info, spec.id, 'deprovision');
    if (info && options.onlyStopped && info.state !== 'stopped') {
      throw new DriverError('rejected', `${spec.name} runs on ${this.#t.uri}: its storage is kept`);
    } else if (spec.volumes.length === 0) return;
    options.onProgress?.({ step: 'deprovision', done: 0, total: 1 });
    if (!info) await this.#defineStorageOnly(spec);
    // geats's agent removes the storage itself, out of vagoth's sight: recorded as handed to
    // it, before it is (a retry records it again), with no bytes vagoth could read back.
    for (const volume of spec.volumes) {
      await options.onWiped?.({
        volume,
        method: 'agent',
        sizeBytes: null,
        bytesWritten: null,
        resumedFrom: 0,
        ms: 0,
        check: null,
      });
    }
    await this.#unlessGone('deprovision', spec.name, { long: true, signal: options.signal });
    if (await this.info(spec.name)) {
      throw new DriverError(
        'rejected',
        `deprovision ${spec.name} on ${this.#t.uri}: geats still holds the VM after deprovision`,
        { code: 'StillDefined' },
      );
    }
    options.onProgress?.({ step: 'deprovision', done: 1, total: 1 });
  }

  async #defineStorageOnly(spec: Pick<DomainSpec, 'id' | 'name'> & { volumes: VolumeRef[] }) {
    const definition = storageOnlyDefinition(spec, spec.volumes, this.#definition);
    try {
      await this.#call('define', { vm_name: spec.name, definition });
    } catch (err) {
      // Defined meanwhile (a retry, or a create that raced): deprovision it if it is this VM.
      const raced = err instanceof DriverError && err.code === 'AlreadyExistsException';
      const now = raced ? await this.info(spec.name) : null;
      if (!now) throw err;
      this.#mustBeOurs(now, spec.id, 'deprovision');
    }
  }

  close(): Promise<void> {
    return this.#t.close();
  }
}
