import { Hypervisor, type Domain } from '@unraid/libvirt';
import {
  DriverError,
  type Driver,
  type DomainInfo,
  type DomainSpec,
  type DomainState,
  type HostStatus,
} from '../driver.ts';
import { domainXml, vagothIdOf } from './domain-xml.ts';

export interface LibvirtDriverOptions {
  uri: string;
  /** Domain type for generated XML; by default `test` for test:// URIs and `kvm` otherwise. */
  domainType?: string;
}

// virDomainState
const STATES: Record<number, DomainState> = {
  1: 'running',
  2: 'running',
  3: 'paused',
  5: 'stopped',
  6: 'stopped',
  7: 'paused',
};

/**
 * The binding drops libvirt's error codes, so errors are classified by libvirt's
 * message prefixes (stable across releases: they come from virErrorMsg).
 */
function classify(err: unknown, what: string): DriverError {
  const message = err instanceof Error ? err.message : String(err);
  const kind = /^Domain not found|no domain with matching/.test(message)
    ? 'not-found'
    : /^(XML error|unsupported configuration|invalid argument|XML document failed|operation failed: domain .* already exists)/.test(
          message,
        )
      ? 'rejected'
      : 'unreachable';
  return new DriverError(kind, `${what}: ${message}`, { cause: err });
}

export class LibvirtDriver implements Driver {
  readonly #uri: string;
  readonly #domainType: string;
  #connection: Promise<Hypervisor> | undefined;

  constructor(options: LibvirtDriverOptions) {
    this.#uri = options.uri;
    this.#domainType = options.domainType ?? (options.uri.startsWith('test') ? 'test' : 'kvm');
  }

  #connect(): Promise<Hypervisor> {
    this.#connection ??= (async () => {
      const hv = new Hypervisor({ uri: this.#uri });
      await hv.connectOpen();
      return hv;
    })().catch((err: unknown) => {
      this.#connection = undefined;
      throw new DriverError('unreachable', `cannot connect to ${this.#uri}: ${String(err)}`, {
        cause: err,
      });
    });
    return this.#connection;
  }

  /** Runs one call; an unreachable error drops the connection so the next call reopens it. */
  async #call<T>(what: string, fn: (hv: Hypervisor) => Promise<T>): Promise<T> {
    const hv = await this.#connect();
    try {
      return await fn(hv);
    } catch (err) {
      const e = err instanceof DriverError ? err : classify(err, what);
      if (e.kind === 'unreachable' && this.#connection) {
        this.#connection = undefined;
        void hv.connectClose().catch(() => {});
      }
      throw e;
    }
  }

  async #lookup(hv: Hypervisor, name: string): Promise<Domain | null> {
    try {
      return await hv.domainLookupByName(name);
    } catch (err) {
      if (classify(err, name).kind === 'not-found') return null;
      throw err;
    }
  }

  async #describe(hv: Hypervisor, domain: Domain): Promise<DomainInfo> {
    const [name, info, xml] = await Promise.all([
      hv.domainGetName(domain),
      hv.domainGetInfo(domain),
      hv.domainGetXMLDesc(domain),
    ]);
    return { name, state: STATES[info.state] ?? 'other', vagothId: vagothIdOf(xml) };
  }

  status(): Promise<HostStatus> {
    return this.#call('status', async (hv) => {
      const node = await hv.nodeGetInfo();
      const domains = await hv.connectListAllDomains();
      return {
        capacity: { vcpus: node.cpus, memoryMiB: Math.floor(node.memory / 1024) },
        domains: await Promise.all(domains.map((d) => this.#describe(hv, d))),
      };
    });
  }

  info(name: string): Promise<DomainInfo | null> {
    return this.#call(`info ${name}`, async (hv) => {
      const domain = await this.#lookup(hv, name);
      return domain ? this.#describe(hv, domain) : null;
    });
  }

  define(spec: DomainSpec): Promise<void> {
    return this.#call(`define ${spec.name}`, async (hv) => {
      const existing = await this.#lookup(hv, spec.name);
      if (existing && vagothIdOf(await hv.domainGetXMLDesc(existing)) !== spec.id) {
        throw new DriverError(
          'not-ours',
          `define ${spec.name}: the host has another domain of that name`,
        );
      }
      // Redefining vagoth's own domain is idempotent: same name, same uuid, same XML.
      await hv.domainDefineXML(domainXml(spec, { domainType: this.#domainType }));
    });
  }

  start(name: string): Promise<void> {
    return this.#call(`start ${name}`, async (hv) => {
      const domain = await this.#required(hv, name);
      if ((await this.#describe(hv, domain)).state === 'running') return;
      await hv.domainCreate(domain);
    });
  }

  stop(name: string): Promise<void> {
    return this.#call(`stop ${name}`, async (hv) => {
      const domain = await this.#lookup(hv, name);
      if (!domain) return;
      if ((await this.#describe(hv, domain)).state === 'stopped') return;
      await hv.domainDestroy(domain);
    });
  }

  undefine(spec: Pick<DomainSpec, 'id' | 'name'>): Promise<void> {
    return this.#call(`undefine ${spec.name}`, async (hv) => {
      const domain = await this.#lookup(hv, spec.name);
      if (!domain) return;
      const info = await this.#describe(hv, domain);
      // Destructive: only ever on the domain vagoth created for this very VM.
      if (info.vagothId !== spec.id) {
        throw new DriverError(
          'not-ours',
          `undefine ${spec.name}: the domain was not created by vagoth for this VM`,
        );
      }
      if (info.state !== 'stopped') await hv.domainDestroy(domain);
      await hv.domainUndefine(domain);
    });
  }

  async #required(hv: Hypervisor, name: string): Promise<Domain> {
    const domain = await this.#lookup(hv, name);
    if (!domain) throw new DriverError('not-found', `${name}: no such domain on ${this.#uri}`);
    return domain;
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) await (await connection.catch(() => null))?.connectClose();
  }
}
