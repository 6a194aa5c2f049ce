import { describe, expect, it } from 'vitest';
import type { DomainInfo, HostStatus } from '../../drivers/driver.ts';
import {
  reconcile,
  REPORT_ONLY,
  STUCK_AFTER_SECONDS,
  type HeldRoom,
  type HostPoll,
  type LingeringVm,
  type ReconcilePolicies,
  type RegisteredVm,
} from '../../monitor/reconcile.ts';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const vm = (n: number, host: string | null, state: RegisteredVm['state'] = 'running') => ({
  id: id(n),
  name: `vm-${n}`,
  host,
  state,
});
const domain = (
  name: string,
  vagothId: string | null,
  state: DomainInfo['state'] = 'running',
): DomainInfo => ({ name, vagothId, state, vcpus: 1, memoryMiB: 512, macs: [] });
const status = (...domains: DomainInfo[]): HostStatus => ({
  capacity: { vcpus: 8, memoryMiB: 8192 },
  freeMemoryMiB: 4096,
  load: [0.5, 0.4, 0.3],
  domains,
});
const up = (host: string, ...domains: DomainInfo[]): HostPoll => ({
  host,
  status: status(...domains),
  failures: 0,
});
const silent = (host: string, failures: number): HostPoll => ({ host, status: null, failures });
const policies = (p: Partial<ReconcilePolicies>) => ({ ...REPORT_ONLY, ...p });

describe('reconcile: the buckets', () => {
  it.each([
    {
      case: 'everything where the registry says: nothing to report',
      vms: [vm(1, 'a'), vm(2, 'b')],
      polls: [up('a', domain('vm-1', id(1))), up('b', domain('vm-2', id(2)))],
      kinds: [],
    },
    {
      case: 'a VM its host no longer has is missing',
      vms: [vm(1, 'a')],
      polls: [up('a')],
      kinds: ['missing'],
    },
    {
      case: 'a VM on a host that did not answer is not missing: nobody knows',
      vms: [vm(1, 'a')],
      polls: [silent('a', 1)],
      kinds: [],
    },
    {
      case: 'a VM in the middle of an operation is not missing yet',
      vms: [vm(1, 'a', 'starting')],
      polls: [up('a')],
      kinds: [],
    },
    {
      case: 'a domain with vagoth metadata the registry does not know',
      vms: [],
      polls: [up('a', domain('stray', id(9)))],
      kinds: ['unknown'],
    },
    {
      case: 'a VM running on another host than recorded is misplaced',
      vms: [vm(1, 'a')],
      polls: [up('a'), up('b', domain('vm-1', id(1)))],
      kinds: ['misplaced'],
    },
    {
      case: 'a VM on two hosts at once is duplicated, not misplaced',
      vms: [vm(1, 'a')],
      polls: [up('a', domain('vm-1', id(1))), up('b', domain('vm-1', id(1)))],
      kinds: ['duplicated'],
    },
    {
      case: 'a VM recorded stopped whose domain is stopped: nothing to report',
      vms: [vm(1, 'a', 'stopped')],
      polls: [up('a', domain('vm-1', id(1), 'stopped'))],
      kinds: [],
    },
    {
      case: 'a VM recorded stopped that runs has drifted',
      vms: [vm(1, 'a', 'stopped')],
      polls: [up('a', domain('vm-1', id(1), 'running'))],
      kinds: ['drifted'],
    },
    {
      case: 'a stopped VM whose domain is gone is missing',
      vms: [vm(1, 'a', 'stopped')],
      polls: [up('a')],
      kinds: ['missing'],
    },
    {
      case: 'a VM recorded running that its host has stopped has drifted',
      vms: [vm(1, 'a')],
      polls: [up('a', domain('vm-1', id(1), 'stopped'))],
      kinds: ['drifted'],
    },
    {
      case: 'a foreign domain with a registered name is unknown, and the VM is missing',
      vms: [vm(1, 'a')],
      polls: [up('a', domain('vm-1', null))],
      kinds: ['missing', 'unknown'],
    },
  ])('$case', ({ vms, polls, kinds }) => {
    const plan = reconcile(vms, polls);
    expect(plan.discrepancies.map((d) => d.kind).sort()).toEqual(kinds);
    // The default policy only reports: the registry and the hosts are left alone.
    expect(plan.actions.filter((a) => a.kind !== 'host-figures')).toEqual([]);
  });
});

describe('reconcile: what the policies do', () => {
  it('records every answering host’s figures', () => {
    const plan = reconcile([], [up('a'), silent('b', 1)]);
    expect(plan.actions).toEqual([
      { kind: 'host-figures', host: 'a', freeMemoryMiB: 4096, load: [0.5, 0.4, 0.3] },
    ]);
  });

  it('marks a host down only once it has failed downAfter polls in a row', () => {
    const p = policies({ downAfter: 3 });
    expect(reconcile([], [silent('a', 2)], p).actions).toEqual([]);
    expect(reconcile([], [silent('a', 3)], p).actions).toEqual([{ kind: 'host-down', host: 'a' }]);
  });

  it('unassigns a missing VM when asked', () => {
    const plan = reconcile([vm(1, 'a')], [up('a')], policies({ missing: 'unassign' }));
    expect(plan.actions).toContainEqual({ kind: 'unassign', vmId: id(1), host: 'a' });
  });

  it('adopts the host a misplaced VM really runs on when asked', () => {
    const plan = reconcile(
      [vm(1, 'a')],
      [up('a'), up('b', domain('vm-1', id(1)))],
      policies({ misplaced: 'adopt' }),
    );
    expect(plan.actions).toContainEqual({ kind: 'adopt-host', vmId: id(1), host: 'b' });
  });

  it('never acts on a duplicated VM, whatever the policies', () => {
    const plan = reconcile(
      [vm(1, 'a')],
      [up('a', domain('vm-1', id(1))), up('b', domain('vm-1', id(1)))],
      policies({ misplaced: 'adopt', unknownOurs: 'power-off', unknownForeign: 'power-off' }),
    );
    expect(plan.actions.filter((a) => a.kind !== 'host-figures')).toEqual([]);
  });

  it('powers off unknown running domains by their own policies, never a stopped one', () => {
    const polls = [
      up('a', domain('stray', id(9)), domain('other', null), domain('idle', id(8), 'stopped')),
    ];
    const off = (p: Partial<ReconcilePolicies>) =>
      reconcile([], polls, policies(p))
        .actions.filter((a) => a.kind === 'power-off')
        .map((a) => (a.kind === 'power-off' ? a.domain : ''));
    expect(off({ unknownOurs: 'power-off' })).toEqual(['stray']);
    expect(off({ unknownForeign: 'power-off' })).toEqual(['other']);
  });

  it('never powers off a foreign domain that shares a registered VM’s name', () => {
    const plan = reconcile(
      [vm(1, 'a')],
      [up('a', domain('vm-1', null))],
      policies({ unknownForeign: 'power-off' }),
    );
    expect(plan.actions.filter((a) => a.kind === 'power-off')).toEqual([]);
  });

  it('adopts a drifted VM’s state only where the registry has that state', () => {
    const plan = reconcile(
      [vm(1, 'a', 'failed')],
      [up('a', domain('vm-1', id(1), 'running'))],
      policies({ drifted: 'adopt' }),
    );
    expect(plan.actions).toContainEqual({ kind: 'adopt-state', vmId: id(1), state: 'running' });
  });
});

describe('reconcile: hosts the monitor marked down', () => {
  it('brings back a host it marked down once it answers, and only such a host', () => {
    const back = { ...up('a'), downByMonitor: true };
    expect(reconcile([], [back]).actions).toContainEqual({ kind: 'host-up', host: 'a' });
    expect(reconcile([], [up('b')]).actions.map((a) => a.kind)).toEqual(['host-figures']);
    expect(reconcile([], [{ ...silent('c', 5), downByMonitor: true }]).actions).toEqual([
      { kind: 'host-down', host: 'c' },
    ]);
  });
});

const hold = (n: number, host: string | null, vmState: RegisteredVm['state'] | null): HeldRoom => ({
  holder: `vm-${n}:migration`,
  type: 'vm-migration',
  host,
  vm: vmState === null ? null : { name: `vm-${n}`, state: vmState },
});
const lingering = (
  state: RegisteredVm['state'],
  ageSeconds: number,
  workflow: LingeringVm['workflow'],
): LingeringVm => ({ vm: vm(1, 'a', state), ageSeconds, workflow });

describe('reconcile: what the registry holds beside the VMs', () => {
  it.each([
    {
      case: 'a hold whose VM is migrating is a move under way',
      held: [hold(1, 'b', 'migrating')],
      lingering: [],
      kinds: [],
    },
    {
      case: 'a hold whose VM is gone is orphaned',
      held: [hold(1, 'b', null)],
      lingering: [],
      kinds: ['orphanedHold'],
    },
    {
      case: 'a hold whose VM is no longer moving is orphaned, room or not',
      held: [hold(1, 'b', 'running'), hold(2, null, 'stopped')],
      lingering: [],
      kinds: ['orphanedHold', 'orphanedHold'],
    },
    {
      case: 'room held by a node that is no VM and no hold is an orphaned allocation',
      held: [{ holder: 'rack-1', type: 'rack', host: 'b', vm: null }],
      lingering: [],
      kinds: ['orphanedAllocation'],
    },
    {
      case: 'a VM long migrating whose workflow runs no operation is stuck',
      held: [],
      lingering: [lingering('migrating', STUCK_AFTER_SECONDS, 'idle')],
      kinds: ['stuck'],
    },
    {
      case: 'a VM long rebooting whose workflow is not running is stuck',
      held: [],
      lingering: [lingering('rebooting', STUCK_AFTER_SECONDS + 1, 'gone')],
      kinds: ['stuck'],
    },
    {
      case: 'a VM whose workflow has an operation under way is not stuck, however long',
      held: [],
      lingering: [lingering('migrating', 10 * STUCK_AFTER_SECONDS, 'busy')],
      kinds: [],
    },
    {
      case: 'a VM in an intermediate state for less than the threshold is not stuck yet',
      held: [],
      lingering: [lingering('stopping', STUCK_AFTER_SECONDS - 1, 'idle')],
      kinds: [],
    },
    {
      case: 'a settled VM is never stuck',
      held: [],
      lingering: [lingering('running', 10 * STUCK_AFTER_SECONDS, 'idle')],
      kinds: [],
    },
  ])('$case', ({ held, lingering, kinds }) => {
    const plan = reconcile([], [up('a'), up('b')], REPORT_ONLY, { held, lingering });
    expect(plan.discrepancies.map((d) => d.kind)).toEqual(kinds);
    // Reported only, whatever the policies: which side is right takes a person.
    expect(plan.actions.map((a) => a.kind)).toEqual(['host-figures', 'host-figures']);
  });

  it('takes the threshold from the policies', () => {
    const leftovers = { held: [], lingering: [lingering('migrating', 30, 'idle')] };
    const kindsAt = (stuckAfterSeconds: number) =>
      reconcile([], [], { ...REPORT_ONLY, stuckAfterSeconds }, leftovers).discrepancies.map(
        (d) => d.kind,
      );
    expect(kindsAt(30)).toEqual(['stuck']);
    expect(kindsAt(31)).toEqual([]);
  });
});
