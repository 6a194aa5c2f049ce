import type { HostAddress, HostCapacity, VmDefinition } from '../registry/types.ts';

export type DomainState = 'running' | 'stopped' | 'paused' | 'other';

/** What vagoth gives a driver to deploy: the registry's VM, by its stable id. */
export interface DomainSpec {
  id: string;
  name: string;
  definition: VmDefinition;
}

export interface DomainInfo {
  name: string;
  state: DomainState;
  /** The vagoth VM id recorded in the domain's metadata; null for a domain vagoth did not create. */
  vagothId: string | null;
}

export interface HostStatus {
  capacity: HostCapacity;
  domains: DomainInfo[];
}

/**
 * One local VM manager (libvirt, geats). Every operation is idempotent where the hypervisor
 * allows it, so an activity may be retried after a lost answer.
 */
export interface Driver {
  status(): Promise<HostStatus>;
  /** Null when the host has no such domain. */
  info(name: string): Promise<DomainInfo | null>;
  define(spec: DomainSpec): Promise<void>;
  start(name: string): Promise<void>;
  /** Power off. */
  stop(name: string): Promise<void>;
  /** Forget the domain; a domain already gone is success. Refuses a domain vagoth did not create. */
  undefine(spec: Pick<DomainSpec, 'id' | 'name'>): Promise<void>;
  close(): Promise<void>;
}

export type DriverErrorKind = 'unreachable' | 'rejected' | 'not-found' | 'not-ours';

/** `retryable` tells a workflow whether trying again can help. */
export class DriverError extends Error {
  override name = 'DriverError';
  constructor(
    readonly kind: DriverErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get retryable(): boolean {
    return this.kind === 'unreachable';
  }
}

export type DriverFactory = (host: HostAddress) => Driver;
