import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planPlacement, type PlacementRequest } from '../../allocator/place.ts';
import type { Host, HostState } from '../../registry/types.ts';

interface HostOptions {
  state?: HostState;
  /** [vcpus, memoryMiB] */
  capacity?: [number, number];
  allocated?: [number, number];
}

function host(name: string, o: HostOptions = {}): Host {
  const [vcpus, memoryMiB] = o.capacity ?? [8, 16384];
  const [usedVcpus, usedMemoryMiB] = o.allocated ?? [0, 0];
  return {
    id: `id-${name}`,
    name,
    driver: 'libvirt',
    uri: `test:///hosts/${name}.xml`,
    state: o.state ?? 'active',
    capacity: { vcpus, memoryMiB },
    allocated: { vcpus: usedVcpus, memoryMiB: usedMemoryMiB },
    vms: usedVcpus > 0 ? 1 : 0,
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}

const small: PlacementRequest = { vcpus: 2, memoryMiB: 1024 };
const reason = (pattern: RegExp) => expect.stringMatching(pattern);

describe('planPlacement', () => {
  it.each<{
    what: string;
    hosts: Host[];
    request: PlacementRequest;
    candidates: string[];
    rejected: Record<string, unknown>;
  }>([
    {
      what: 'an empty host fits',
      hosts: [host('a')],
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'no hosts: nothing fits, nothing rejected',
      hosts: [],
      request: small,
      candidates: [],
      rejected: {},
    },
    {
      what: 'too little free memory',
      hosts: [host('a', { allocated: [0, 15872] })],
      request: small,
      candidates: [],
      rejected: { a: reason(/not enough memory \(512 MiB free\)/) },
    },
    {
      what: 'memory exactly used up',
      hosts: [host('a', { allocated: [0, 15360] })],
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'too few free vCPUs',
      hosts: [host('a', { allocated: [7, 0] })],
      request: small,
      candidates: [],
      rejected: { a: reason(/not enough vCPUs \(1 free\)/) },
    },
    {
      what: 'vCPUs exactly used up',
      hosts: [host('a', { allocated: [6, 0] })],
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'a host in maintenance',
      hosts: [host('a', { state: 'maintenance' }), host('b')],
      request: small,
      candidates: ['b'],
      rejected: { a: 'host is maintenance' },
    },
    {
      what: 'a host that is down',
      hosts: [host('a', { state: 'down' }), host('b')],
      request: small,
      candidates: ['b'],
      rejected: { a: 'host is down' },
    },
    {
      what: 'an over-committed host',
      hosts: [host('a', { capacity: [4, 4096], allocated: [6, 8192] })],
      request: { vcpus: 1, memoryMiB: 16 },
      candidates: [],
      rejected: { a: reason(/not enough memory/) },
    },
    {
      what: 'a hint: only that host is considered',
      hosts: [host('a'), host('b', { allocated: [0, 8192] }), host('c')],
      request: { ...small, host: 'b' },
      candidates: ['b'],
      rejected: {},
    },
    {
      what: 'a hint naming a full host: nothing else is offered',
      hosts: [host('a'), host('b', { allocated: [8, 0] })],
      request: { ...small, host: 'b' },
      candidates: [],
      rejected: { b: reason(/not enough vCPUs/) },
    },
    {
      what: 'a hint naming a host in maintenance',
      hosts: [host('a'), host('b', { state: 'maintenance' })],
      request: { ...small, host: 'b' },
      candidates: [],
      rejected: { b: 'host is maintenance' },
    },
    {
      what: 'a hint naming an unknown host',
      hosts: [host('a'), host('b')],
      request: { ...small, host: 'zz' },
      candidates: [],
      rejected: { zz: 'no such host' },
    },
    {
      what: 'most free memory first, ties by name',
      hosts: [
        host('d', { capacity: [8, 4096] }),
        host('c', { allocated: [0, 8192] }),
        host('b', { capacity: [8, 65536], allocated: [0, 61440] }),
        host('a', { capacity: [8, 8192] }),
        host('e'),
      ],
      request: small,
      candidates: ['e', 'a', 'c', 'b', 'd'],
      rejected: {},
    },
    {
      what: 'free memory, not free vCPUs, decides the order',
      hosts: [
        host('many-cpus', { capacity: [64, 8192] }),
        host('much-memory', { capacity: [2, 32768] }),
      ],
      request: small,
      candidates: ['much-memory', 'many-cpus'],
      rejected: {},
    },
  ])('$what', ({ hosts, request, candidates, rejected }) => {
    expect(planPlacement(hosts, request)).toEqual({ candidates, rejected });
  });

  it('rejects every host that cannot take the VM, each with its own reason', () => {
    const hosts = [
      host('full-mem', { allocated: [0, 16000] }),
      host('full-cpu', { allocated: [8, 0] }),
      host('maint', { state: 'maintenance' }),
      host('down', { state: 'down' }),
      host('ok'),
    ];
    expect(planPlacement(hosts, small)).toEqual({
      candidates: ['ok'],
      rejected: {
        'full-mem': reason(/memory/),
        'full-cpu': reason(/vCPUs/),
        maint: 'host is maintenance',
        down: 'host is down',
      },
    });
  });
});

// Free capacity as the filters define it, written out independently of the code under test.
const freeMemory = (h: Host) => h.capacity.memoryMiB - h.allocated.memoryMiB;
const fits = (h: Host, r: PlacementRequest) =>
  h.state === 'active' &&
  freeMemory(h) >= r.memoryMiB &&
  h.capacity.vcpus - h.allocated.vcpus >= r.vcpus;

const arbHost = (name: string) =>
  fc
    .record({
      state: fc.constantFrom<HostState>('active', 'active', 'maintenance', 'down'),
      capacity: fc.tuple(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 8 }).map((g) => g * 1024),
      ),
      allocated: fc.tuple(
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 8 }).map((g) => g * 1024),
      ),
    })
    .map((o) => host(name, o));

// Lowercase letters and digits: code-point order and the implementation's localeCompare agree on them.
const arbHosts = fc
  .uniqueArray(fc.stringMatching(/^[a-z0-9]{1,6}$/), { maxLength: 8 })
  .chain((names) => fc.tuple(...names.map(arbHost)));

const arbRequest = fc.record({
  vcpus: fc.integer({ min: 1, max: 16 }),
  memoryMiB: fc.integer({ min: 1, max: 8 }).map((g) => g * 1024),
});

describe('planPlacement, for any hosts and request', () => {
  it('offers exactly the hosts that pass every filter, best first, and rejects all others with a reason', () => {
    fc.assert(
      fc.property(arbHosts, arbRequest, (hosts, request) => {
        const plan = planPlacement(hosts, request);
        expect(new Set(plan.candidates)).toEqual(
          new Set(hosts.filter((h) => fits(h, request)).map((h) => h.name)),
        );
        expect(plan.candidates).toHaveLength(new Set(plan.candidates).size);
        expect(Object.keys(plan.rejected).sort()).toEqual(
          hosts
            .filter((h) => !fits(h, request))
            .map((h) => h.name)
            .sort(),
        );
        for (const why of Object.values(plan.rejected)) expect(why).toMatch(/\S/);
        const byName = new Map(hosts.map((h) => [h.name, h]));
        plan.candidates.slice(1).forEach((name, i) => {
          const prev = byName.get(plan.candidates[i]!)!;
          const next = byName.get(name)!;
          const ordered =
            freeMemory(prev) > freeMemory(next) ||
            (freeMemory(prev) === freeMemory(next) && prev.name < next.name);
          expect(ordered, `${prev.name} before ${next.name}`).toBe(true);
        });
      }),
    );
  });

  it('with a hint, considers the hinted host alone', () => {
    const arbHint = arbHosts.chain((hosts) =>
      fc.tuple(
        fc.constant(hosts),
        fc.oneof(fc.constantFrom(...hosts.map((h) => h.name), 'absent'), fc.constant('absent')),
      ),
    );
    fc.assert(
      fc.property(arbHint, arbRequest, ([hosts, hint], request) => {
        const plan = planPlacement(hosts, { ...request, host: hint });
        const hinted = hosts.find((h) => h.name === hint);
        if (hinted && fits(hinted, request)) {
          expect(plan).toEqual({ candidates: [hint], rejected: {} });
        } else {
          expect(plan.candidates).toEqual([]);
          expect(Object.keys(plan.rejected)).toEqual([hint]);
          expect(plan.rejected[hint]).toMatch(hinted ? /\S/ : /^no such host$/);
        }
      }),
    );
  });
});
