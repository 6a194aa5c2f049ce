import { describe, expect, it } from 'vitest';
import type { DomainInfo } from '../../drivers/driver.ts';
import {
  entityWorkflowsOnly,
  findViolations,
  type ClusterSnapshot,
} from '../support/invariants.ts';

const domain = (name: string, vagothId: string | null, state = 'running'): DomainInfo => ({
  name,
  vagothId,
  state: state as DomainInfo['state'],
  vcpus: 1,
  memoryMiB: 64,
  macs: [],
});

// A healthy cluster: one VM running where the registry says, one foreign domain, one failed VM.
function healthy(): ClusterSnapshot {
  return {
    vms: [
      { id: 'a', name: 'vm-a', state: 'running', host: 'hv-1' },
      { id: 'b', name: 'vm-b', state: 'failed', host: null },
    ],
    keys: [
      { key: 'name:vm-a', holderId: 'a', holderExists: true },
      { key: 'ip:10.0.0.2', holderId: 'a', holderExists: true },
    ],
    allocations: [{ vmId: 'a', vmExists: true, host: 'hv-1' }],
    domains: new Map([
      ['hv-1', [domain('vm-a', 'a'), domain('test', null)]],
      ['hv-2', []],
    ]),
    openWorkflows: ['vm:vm-a'],
  };
}

// The checker is what the chaos tests trust: each planted fault must be named.
describe('findViolations', () => {
  const opts = { mayStayOpen: entityWorkflowsOnly };
  it('passes a healthy cluster', () => {
    expect(findViolations(healthy(), opts)).toEqual([]);
  });

  it.each<[string, (s: ClusterSnapshot) => void, string]>([
    [
      'a second copy',
      (s) => s.domains.get('hv-2')!.push(domain('vm-a', 'a')),
      'vm vm-a is running on 2 hosts',
    ],
    [
      'a domain nobody knows',
      (s) => s.domains.get('hv-2')!.push(domain('x', 'zz')),
      'domain x on hv-2 belongs to no VM in the registry',
    ],
    [
      'a key held twice',
      (s) => s.keys.push({ key: 'ip:10.0.0.2', holderId: 'b', holderExists: true }),
      'key ip:10.0.0.2 is held 2 times',
    ],
    [
      'a key of a removed VM',
      (s) => s.keys.push({ key: 'mac:x', holderId: 'gone', holderExists: false }),
      'key mac:x is held by removed node gone',
    ],
    [
      'capacity of a removed VM',
      (s) => s.allocations.push({ vmId: 'gone', vmExists: false, host: 'hv-2' }),
      'capacity on hv-2 is charged to removed VM gone',
    ],
    [
      'a failed VM left on a host',
      (s) => s.domains.get('hv-2')!.push(domain('vm-b', 'b', 'stopped')),
      'failed vm vm-b still has a domain on hv-2',
    ],
    ['a VM stuck half-way', (s) => (s.vms[0]!.state = 'starting'), 'vm vm-a is stuck in starting'],
    [
      'a domain on the wrong host',
      (s) => s.domains.set('hv-1', []).set('hv-2', [domain('vm-a', 'a')]),
      'domain vm-a is on hv-2, the registry says hv-1',
    ],
    [
      'a running VM the host has stopped',
      (s) => (s.domains.get('hv-1')![0] = domain('vm-a', 'a', 'stopped')),
      'vm vm-a is running in the registry, stopped on hv-1',
    ],
    [
      'an operation still running',
      (s) => s.openWorkflows.push('vm:vm-a:create'),
      'workflow vm:vm-a:create is still running',
    ],
    [
      'the entity of a removed VM',
      (s) => s.openWorkflows.push('vm:vm-gone'),
      'workflow vm:vm-gone is still running',
    ],
  ])('names %s', (_, plant, expected) => {
    const s = healthy();
    plant(s);
    expect(findViolations(s, opts)).toContain(expected);
  });
});
