// The monitor's decision: what the registry believes against what the hosts report, as named
// buckets (Nomad's reconciler) and the actions the cluster's policies ask for. Pure: the
// monitor workflow gathers the snapshot, activities apply the plan.
import type { DomainInfo, DomainState, HostStatus } from '../drivers/driver.ts';
import type { VmState } from '../registry/types.ts';

export interface RegisteredVm {
  id: string;
  name: string;
  /** The host the registry has it on; null while unplaced. */
  host: string | null;
  state: VmState;
}

export interface HostPoll {
  host: string;
  /** What the host answered; null when it did not answer. */
  status: HostStatus | null;
  /** Polls in a row the host has not answered, this one included. */
  failures: number;
  /** The monitor (not an operator) marked the host down: an answer brings it back. */
  downByMonitor?: boolean;
}

/**
 * Room held on a host by something other than a VM, as the registry has it now: a migration
 * hold (`<vm>:migration`), with its VM as it is now (null when it is gone), or another node.
 */
export interface HeldRoom {
  holder: string;
  type: string;
  /** The host the room is on; null for a hold that holds none. */
  host: string | null;
  /** For a migration hold: its VM's name and state now, null when that VM is gone. */
  vm: { name: string; state: VmState } | null;
}

/** A VM that has been in an intermediate state a while, and what its workflow says. */
export interface LingeringVm {
  vm: RegisteredVm;
  /** Seconds since the VM's record last changed: at least that long in its state. */
  ageSeconds: number;
  /** Its workflow `vm:<name>` runs or queues an operation, has none, or does not run. */
  workflow: 'busy' | 'idle' | 'gone';
}

/** What the registry holds beside the VMs, read when the plan is made (see planReconcile). */
export interface Leftovers {
  held: HeldRoom[];
  lingering: LingeringVm[];
}

export const NO_LEFTOVERS: Leftovers = { held: [], lingering: [] };

/** How long a VM may sit in an intermediate state before an idle workflow makes it `stuck`. */
export const STUCK_AFTER_SECONDS = 600;

export type Discrepancy =
  /** In the registry on this host, but the host does not have it. */
  | { kind: 'missing'; vm: RegisteredVm; host: string }
  /** On the host, unknown to the registry: vagoth's (its metadata says so) or foreign. */
  | { kind: 'unknown'; host: string; domain: DomainInfo; ours: boolean }
  /** Runs on a host other than the one recorded (and not on the recorded one). */
  | { kind: 'misplaced'; vm: RegisteredVm; recorded: string | null; actual: string }
  /** On more than one host at once: never acted on automatically. */
  | { kind: 'duplicated'; vm: RegisteredVm; hosts: string[] }
  /** On its host, in another state than the registry records. */
  | { kind: 'drifted'; vm: RegisteredVm; host: string; actual: DomainState }
  /** A migration hold whose VM is gone, or is not moving: its room is promised to no move. */
  | { kind: 'orphanedHold'; hold: HeldRoom }
  /** Room held on a host by a node that is neither a VM nor a migration hold. */
  | { kind: 'orphanedAllocation'; holder: HeldRoom }
  /**
   * In an intermediate state (migrating, rebooting, stopping, ...) for `stuckAfterSeconds` or
   * more, while its workflow has no operation under way: nothing will ever move it on.
   */
  | { kind: 'stuck'; vm: RegisteredVm; ageSeconds: number; workflow: 'idle' | 'gone' };

export type DiscrepancyKind = Discrepancy['kind'];

/** What to do about each kind; `report` only records it, and is every kind's default. */
export interface ReconcilePolicies {
  missing: 'report' | 'unassign';
  unknownOurs: 'report' | 'power-off';
  unknownForeign: 'report' | 'power-off';
  misplaced: 'report' | 'adopt';
  drifted: 'report' | 'adopt';
  /** Polls in a row without an answer before a host is marked down. */
  downAfter: number;
  /** Seconds in an intermediate state before a VM whose workflow is idle is `stuck`. */
  stuckAfterSeconds?: number;
}

export const REPORT_ONLY: ReconcilePolicies = {
  missing: 'report',
  unknownOurs: 'report',
  unknownForeign: 'report',
  misplaced: 'report',
  drifted: 'report',
  downAfter: 3,
};

export type ReconcileAction =
  /** Record the host's figures (and `down` once it has failed too often). */
  | { kind: 'host-figures'; host: string; freeMemoryMiB: number; load: HostStatus['load'] }
  | { kind: 'host-down'; host: string }
  /** A host the monitor had marked down answers again. */
  | { kind: 'host-up'; host: string }
  /** Forget where a missing VM was: it needs placing again. */
  | { kind: 'unassign'; vmId: string; host: string }
  /** Record the host the VM really runs on. */
  | { kind: 'adopt-host'; vmId: string; host: string }
  /** Record the state the host reports. */
  | { kind: 'adopt-state'; vmId: string; state: VmState }
  /** `vagothId` lets the applier check again that the registry still does not know it. */
  | { kind: 'power-off'; host: string; domain: string; vagothId: string | null };

export interface ReconcilePlan {
  discrepancies: Discrepancy[];
  actions: ReconcileAction[];
}

// A VM in any other state is in the middle of an operation: the host may lag or lead the
// registry, and the operation's workflow, not the monitor, settles it.
export const SETTLED_STATES: readonly VmState[] = ['running', 'stopped', 'failed'];
const SETTLED: ReadonlySet<VmState> = new Set<VmState>(SETTLED_STATES);

/** The registry's state for what a host reports, when it is a settled one. */
function registryStateOf(actual: DomainState): VmState | null {
  if (actual === 'running') return 'running';
  return actual === 'stopped' ? 'stopped' : null;
}

export function reconcile(
  vms: RegisteredVm[],
  polls: HostPoll[],
  policies: ReconcilePolicies = REPORT_ONLY,
  leftovers: Leftovers = NO_LEFTOVERS,
): ReconcilePlan {
  const discrepancies: Discrepancy[] = [];
  const actions: ReconcileAction[] = [];
  const byId = new Map(vms.map((vm) => [vm.id, vm]));
  const byName = new Map(vms.map((vm) => [vm.name, vm]));
  const answered = new Set<string>();
  // Where each registered VM was seen, and as what.
  const seen = new Map<string, Array<{ host: string; domain: DomainInfo }>>();

  for (const poll of polls) {
    if (!poll.status) {
      if (poll.failures >= policies.downAfter) actions.push({ kind: 'host-down', host: poll.host });
      continue;
    }
    answered.add(poll.host);
    if (poll.downByMonitor) actions.push({ kind: 'host-up', host: poll.host });
    const { freeMemoryMiB, load } = poll.status;
    actions.push({ kind: 'host-figures', host: poll.host, freeMemoryMiB, load });
    for (const domain of poll.status.domains) {
      // vagoth's metadata names the VM; a domain without it can only match by name, and then
      // it is not vagoth's to act on.
      const vm = domain.vagothId ? byId.get(domain.vagothId) : undefined;
      if (vm) {
        seen.set(vm.id, [...(seen.get(vm.id) ?? []), { host: poll.host, domain }]);
        continue;
      }
      const ours = domain.vagothId !== null;
      discrepancies.push({ kind: 'unknown', host: poll.host, domain, ours });
      const policy = ours ? policies.unknownOurs : policies.unknownForeign;
      // A foreign domain that happens to share a registered VM's name is never powered off.
      if (
        policy === 'power-off' &&
        !(!ours && byName.has(domain.name)) &&
        domain.state !== 'stopped'
      ) {
        actions.push({
          kind: 'power-off',
          host: poll.host,
          domain: domain.name,
          vagothId: domain.vagothId,
        });
      }
    }
  }

  for (const vm of vms) {
    const where = seen.get(vm.id) ?? [];
    if (where.length > 1) {
      discrepancies.push({ kind: 'duplicated', vm, hosts: where.map((w) => w.host).sort() });
      continue;
    }
    const [at] = where;
    if (!at) {
      // Only a host that answered can be missing a VM; an unplaced VM is on no host yet.
      if (vm.host && answered.has(vm.host) && SETTLED.has(vm.state)) {
        discrepancies.push({ kind: 'missing', vm, host: vm.host });
        if (policies.missing === 'unassign')
          actions.push({ kind: 'unassign', vmId: vm.id, host: vm.host });
      }
      continue;
    }
    if (at.host !== vm.host) {
      discrepancies.push({ kind: 'misplaced', vm, recorded: vm.host, actual: at.host });
      if (policies.misplaced === 'adopt' && SETTLED.has(vm.state)) {
        actions.push({ kind: 'adopt-host', vmId: vm.id, host: at.host });
      }
      continue;
    }
    if (!SETTLED.has(vm.state)) continue;
    const actual = registryStateOf(at.domain.state);
    if (actual !== vm.state) {
      discrepancies.push({ kind: 'drifted', vm, host: at.host, actual: at.domain.state });
      if (policies.drifted === 'adopt' && actual) {
        actions.push({ kind: 'adopt-state', vmId: vm.id, state: actual });
      }
    }
  }
  discrepancies.push(...leftoverDiscrepancies(leftovers, policies));
  return { discrepancies, actions };
}

/** Reported only: which side is right (a lost move, a crashed operation) takes a person. */
function leftoverDiscrepancies(leftovers: Leftovers, policies: ReconcilePolicies): Discrepancy[] {
  const found: Discrepancy[] = [];
  for (const held of leftovers.held) {
    if (held.type !== 'vm-migration') found.push({ kind: 'orphanedAllocation', holder: held });
    // A hold is taken after its VM enters `migrating` and goes before it leaves it.
    else if (held.vm?.state !== 'migrating') found.push({ kind: 'orphanedHold', hold: held });
  }
  const after = policies.stuckAfterSeconds ?? STUCK_AFTER_SECONDS;
  for (const { vm, ageSeconds, workflow } of leftovers.lingering) {
    if (SETTLED.has(vm.state) || ageSeconds < after || workflow === 'busy') continue;
    found.push({ kind: 'stuck', vm, ageSeconds, workflow });
  }
  return found;
}
