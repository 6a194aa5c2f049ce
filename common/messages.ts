/**
 * The messages the workflows and the activities exchange: the arguments and answers of
 * activities and of the VM entity's Updates, and the domain types in them. Both sides import
 * them from here, never from each other, so neither folder imports the other (the Temporal
 * samples' `shared.ts`). Types only: nothing here exists at run time, so workflow code may
 * import it; the registry's and the monitor's types are re-exported as types, and
 * eslint.config.js lets this file, and no other under common/, name them.
 */
import type { NewHost } from '../registry/hosts.ts';
import type { OperationRef, VmState } from '../registry/types.ts';

export type { Host, HostAddress, HostState, OperationRef, Vm, VmState } from '../registry/types.ts';
export type { VmRequest } from '../registry/vms.ts';
export type { HostedVm } from '../registry/hosts.ts';
export type { MonitorTarget, PollRecord } from '../registry/monitor.ts';
export type { ImportedImage } from '../registry/images.ts';
export type {
  HostPoll,
  ReconcileAction,
  ReconcilePlan,
  ReconcilePolicies,
  RegisteredVm,
} from '../monitor/reconcile.ts';

// The VM entity's operations (workflows/vm-entity.ts) and their requests.

/** The operations a VM's entity workflow serves, each as an Update of that name. */
export type OperationKind =
  | 'create'
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'reboot'
  | 'migrate'
  | 'reprovision'
  | 'decommission'
  | 'evacuate';

/** A VM as its entity workflow sees it; `gone` once decommissioned or removed. */
export type EntityState = VmState | 'gone';

export interface MigrateRequest {
  host?: string | undefined;
  live?: boolean | undefined;
}

/** Restart the VM elsewhere: `from` is the fenced host it must be on (else nothing to do). */
export interface EvacuateRequest {
  from: string;
}

export interface ShutdownArgs {
  timeoutMs?: number | undefined;
  force?: boolean | undefined;
}

/** What the entity workflow knows of its VM; carried across continueAsNew. */
export interface VmFacts {
  name: string;
  vmId: string | null;
  state: EntityState;
  host: string | null;
  error: string | null;
}

/** The answer of every VM operation's Update (a host's drain reads it, activities/host.ts). */
export interface OperationOutcome {
  operation: OperationRef;
  state: EntityState;
  host: string | null;
  /** What the caller should know of how it went (a move asked live that went cold, and why). */
  note?: string;
}

// The arguments of the VM steps (activities/vm.ts, activities/vm-disks.ts).

/** A change of the VM's registry state, compare-and-set from `from` (as transitionVm). */
export interface Transition {
  from: VmState[] | 'any';
  to: VmState;
  operation: OperationRef;
  error?: string | null;
}

/**
 * The registry states a step moves the VM through: `enter` before its side effect, `done`
 * after it. Made inside the step, they cost the workflow no step of their own.
 */
export interface StepStates {
  enter?: Transition;
  done?: Transition;
}

export interface ShutdownRequest {
  timeoutMs: number;
  force: boolean;
}

// The host steps (activities/host.ts).

/** A host to record, as hosts.register takes it. */
export type HostRegistration = Omit<NewHost, 'capacity'> & { vcpus?: number | undefined };

/**
 * One VM of a drain or an evacuation: where it went; or why it stayed (still on the host, its
 * state untouched by the attempt); or, having left the host, why it failed where it went.
 */
export type DrainOutcome =
  | { vm: string; moved: true; to: string; note?: string }
  | { vm: string; moved: false; reason: string }
  | { vm: string; moved: false; reason: string; failedOn: string }
  | { vm: string; moved: false; reason: string; gone: true };

// The monitor's steps (activities/monitor.ts).

/** What one action came to: done, or left alone and why (the VM moved on since the snapshot). */
export type ActionOutcome = 'applied' | `skipped: ${string}`;
