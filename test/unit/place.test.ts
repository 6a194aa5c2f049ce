import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  claimOrder,
  planPlacement,
  type HostView,
  type PlacementPolicy,
  type PlacementRequest,
  type PlacementSnapshot,
  type Resources,
} from '../../allocator/place.ts';
import type { DriverFeature, HostDriver, HostState } from '../../registry/types.ts';

interface HostOptions {
  state?: HostState;
  driver?: HostDriver;
  tags?: Record<string, string>;
  free?: Partial<Resources>;
  cpuRatio?: number;
  antiAffinity?: string[];
}

/** An active, untagged host with 8 vCPUs, 16 GiB and 100 GiB free unless told otherwise. */
function host(name: string, o: HostOptions = {}): HostView {
  return {
    name,
    state: o.state ?? 'active',
    driver: o.driver ?? 'libvirt',
    tags: o.tags ?? {},
    free: { vcpus: 8, memoryMiB: 16384, diskGiB: 100, ...o.free },
    cpuRatio: o.cpuRatio ?? 1,
    antiAffinity: o.antiAffinity ?? [],
  };
}

const snapshot = (
  hosts: HostView[],
  affinityHosts: Record<string, string> = {},
): PlacementSnapshot => ({ hosts, affinityHosts });

const small: PlacementRequest = { vcpus: 2, memoryMiB: 1024, diskGiB: 10 };

interface Case {
  what: string;
  snapshot: PlacementSnapshot;
  request: PlacementRequest;
  candidates: string[];
  rejected: Record<string, string>;
}

const run = ({ snapshot, request, candidates, rejected }: Case) => {
  const { leaders: _leaders, ...plan } = planPlacement(snapshot, request);
  expect(plan).toEqual({ candidates, rejected });
};

describe('planPlacement: one filter at a time', () => {
  it.each<Case>([
    {
      what: 'an empty host fits',
      snapshot: snapshot([host('a')]),
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'no hosts: nothing fits, nothing is rejected',
      snapshot: snapshot([]),
      request: small,
      candidates: [],
      rejected: {},
    },
    // Memory
    {
      what: 'memory: free equal to the request fits',
      snapshot: snapshot([host('a', { free: { memoryMiB: 1024 } })]),
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'memory: one MiB short is rejected',
      snapshot: snapshot([host('a', { free: { memoryMiB: 1023 } })]),
      request: small,
      candidates: [],
      rejected: { a: 'not enough memory (1023 MiB free)' },
    },
    // vCPUs (free already has the ratio applied: the ratio only shows in the reason)
    {
      what: 'vCPUs: free equal to the request fits',
      snapshot: snapshot([host('a', { free: { vcpus: 2 }, cpuRatio: 4 })]),
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'vCPUs: one short is rejected, naming the ratio',
      snapshot: snapshot([host('a', { free: { vcpus: 1 }, cpuRatio: 4 })]),
      request: small,
      candidates: [],
      rejected: { a: 'not enough vCPUs (1 free at ratio 4)' },
    },
    {
      what: 'vCPUs: the ratio is not applied a second time',
      snapshot: snapshot([host('a', { free: { vcpus: 1 }, cpuRatio: 16 })]),
      request: { ...small, vcpus: 2 },
      candidates: [],
      rejected: { a: 'not enough vCPUs (1 free at ratio 16)' },
    },
    // Disk
    {
      what: 'disk: free equal to the request fits',
      snapshot: snapshot([host('a', { free: { diskGiB: 10 } })]),
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'disk: one GiB short is rejected',
      snapshot: snapshot([host('a', { free: { diskGiB: 9 } })]),
      request: small,
      candidates: [],
      rejected: { a: 'not enough disk (9 GiB free)' },
    },
    {
      what: 'disk: a diskless VM fits a host without free disk',
      snapshot: snapshot([host('a', { free: { diskGiB: 0 } })]),
      request: { ...small, diskGiB: 0 },
      candidates: ['a'],
      rejected: {},
    },
    // Host state
    {
      what: 'state: a host in maintenance',
      snapshot: snapshot([host('a', { state: 'maintenance' }), host('b')]),
      request: small,
      candidates: ['b'],
      rejected: { a: 'host is maintenance' },
    },
    {
      what: 'state: a host that is down',
      snapshot: snapshot([host('a', { state: 'down' }), host('b')]),
      request: small,
      candidates: ['b'],
      rejected: { a: 'host is down' },
    },
    // Required tags
    {
      what: 'tags: every required tag matches, extra host tags are fine',
      snapshot: snapshot([host('a', { tags: { zone: 'z1', rack: 'r1', gpu: 'no' } })]),
      request: { ...small, tags: { zone: 'z1', rack: 'r1' } },
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'tags: no required tags, any host tags are fine',
      snapshot: snapshot([host('a', { tags: { zone: 'z1' } }), host('b')]),
      request: { ...small, tags: {} },
      candidates: ['a', 'b'],
      rejected: {},
    },
    {
      what: 'tags: a missing key is rejected, naming the tag',
      snapshot: snapshot([host('a', { tags: { zone: 'z1' } })]),
      request: { ...small, tags: { zone: 'z1', rack: 'r1' } },
      candidates: [],
      rejected: { a: 'missing tag rack=r1' },
    },
    {
      what: 'tags: a wrong value is rejected, naming the tag',
      snapshot: snapshot([host('a', { tags: { zone: 'z1', rack: 'r2' } })]),
      request: { ...small, tags: { zone: 'z1', rack: 'r1' } },
      candidates: [],
      rejected: { a: 'missing tag rack=r1' },
    },
    {
      what: 'tags: an untagged host lacks any required tag',
      snapshot: snapshot([host('a')]),
      request: { ...small, tags: { zone: 'z1' } },
      candidates: [],
      rejected: { a: 'missing tag zone=z1' },
    },
    {
      what: 'tags: the value must match exactly (case, empty string)',
      snapshot: snapshot([
        host('upper', { tags: { zone: 'Z1' } }),
        host('empty', { tags: { zone: '' } }),
        host('exact', { tags: { zone: 'z1' } }),
      ]),
      request: { ...small, tags: { zone: 'z1' } },
      candidates: ['exact'],
      rejected: { upper: 'missing tag zone=z1', empty: 'missing tag zone=z1' },
    },
    {
      what: 'tags: a required empty value needs the key, with an empty value',
      snapshot: snapshot([host('has', { tags: { ssd: '' } }), host('lacks')]),
      request: { ...small, tags: { ssd: '' } },
      candidates: ['has'],
      rejected: { lacks: 'missing tag ssd=' },
    },
    // Anti-affinity
    {
      what: "anti-affinity: a host with one of the request's groups is rejected",
      snapshot: snapshot([host('a', { antiAffinity: ['web'] }), host('b')]),
      request: { ...small, antiAffinity: ['db', 'web'] },
      candidates: ['b'],
      rejected: { a: 'anti-affinity group web already on this host' },
    },
    {
      what: 'anti-affinity: other groups on the host are irrelevant',
      snapshot: snapshot([host('a', { antiAffinity: ['cache', 'queue'] })]),
      request: { ...small, antiAffinity: ['web'] },
      candidates: ['a'],
      rejected: {},
    },
    {
      what: 'anti-affinity: a request without groups ignores the host’s groups',
      snapshot: snapshot([host('a', { antiAffinity: ['web'] })]),
      request: small,
      candidates: ['a'],
      rejected: {},
    },
    // Affinity
    {
      what: 'affinity: a group already on a host: only that host qualifies',
      snapshot: snapshot([host('a'), host('b', { free: { memoryMiB: 2048 } }), host('c')], {
        web: 'b',
      }),
      request: { ...small, affinity: ['web'] },
      candidates: ['b'],
      rejected: { a: 'affinity group web is on b', c: 'affinity group web is on b' },
    },
    {
      what: 'affinity: a group with no members yet: any host',
      snapshot: snapshot([host('a'), host('b')], { db: 'b' }),
      request: { ...small, affinity: ['web'] },
      candidates: ['a', 'b'],
      rejected: {},
    },
    {
      what: 'affinity: groups the request does not name are irrelevant',
      snapshot: snapshot([host('a'), host('b')], { db: 'b' }),
      request: small,
      candidates: ['a', 'b'],
      rejected: {},
    },
    {
      what: 'affinity: the group’s host cannot take the VM: nothing qualifies',
      snapshot: snapshot([host('a'), host('b', { state: 'down' })], { web: 'b' }),
      request: { ...small, affinity: ['web'] },
      candidates: [],
      rejected: { a: 'affinity group web is on b', b: 'host is down' },
    },
    {
      what: 'affinity: two groups on two different hosts: nothing qualifies',
      snapshot: snapshot([host('a'), host('b')], { web: 'a', db: 'b' }),
      request: { ...small, affinity: ['web', 'db'] },
      candidates: [],
      rejected: { a: 'affinity group db is on b', b: 'affinity group web is on a' },
    },
    {
      what: 'affinity: a group on a host outside the snapshot: nothing qualifies',
      snapshot: snapshot([host('a')], { web: 'gone' }),
      request: { ...small, affinity: ['web'] },
      candidates: [],
      rejected: { a: 'affinity group web is on gone' },
    },
    // Hint
    {
      what: 'hint: only the hinted host is considered, the others are not listed',
      snapshot: snapshot([host('a'), host('b', { free: { memoryMiB: 2048 } }), host('c')]),
      request: { ...small, host: 'b' },
      candidates: ['b'],
      rejected: {},
    },
    {
      what: 'hint: a hinted host that cannot take the VM is rejected, nothing else offered',
      snapshot: snapshot([host('a'), host('b', { free: { vcpus: 1 } })]),
      request: { ...small, host: 'b' },
      candidates: [],
      rejected: { b: 'not enough vCPUs (1 free at ratio 1)' },
    },
    {
      what: 'hint: a hinted host in maintenance',
      snapshot: snapshot([host('a'), host('b', { state: 'maintenance' })]),
      request: { ...small, host: 'b' },
      candidates: [],
      rejected: { b: 'host is maintenance' },
    },
    {
      what: 'hint: other hosts that would fail are not listed either',
      snapshot: snapshot([
        host('a', { state: 'down' }),
        host('b'),
        host('c', { free: { memoryMiB: 0 } }),
      ]),
      request: { ...small, host: 'b' },
      candidates: ['b'],
      rejected: {},
    },
    {
      what: 'hint: an unknown host',
      snapshot: snapshot([host('a'), host('b')]),
      request: { ...small, host: 'zz' },
      candidates: [],
      rejected: { zz: 'no such host' },
    },
    {
      what: 'hint: an unknown host among no hosts at all',
      snapshot: snapshot([]),
      request: { ...small, host: 'zz' },
      candidates: [],
      rejected: { zz: 'no such host' },
    },
    {
      what: 'hint: names are matched exactly (case-sensitive)',
      snapshot: snapshot([host('Node1')]),
      request: { ...small, host: 'node1' },
      candidates: [],
      rejected: { node1: 'no such host' },
    },
  ])('$what', run);
});

describe('planPlacement: reasons', () => {
  it('rejects every host that cannot take the VM, each kind of rejection with its own reason', () => {
    const request: PlacementRequest = {
      ...small,
      tags: { zone: 'z1' },
      antiAffinity: ['web'],
      affinity: ['db'],
    };
    const z1 = { zone: 'z1' };
    const hosts = [
      host('maint', { state: 'maintenance', tags: z1 }),
      host('down', { state: 'down', tags: z1 }),
      host('no-mem', { tags: z1, free: { memoryMiB: 1023 } }),
      host('no-cpu', { tags: z1, free: { vcpus: 1 }, cpuRatio: 2 }),
      host('no-disk', { tags: z1, free: { diskGiB: 9 } }),
      host('untagged'),
      host('wrong-zone', { tags: { zone: 'z2' } }),
      host('anti', { tags: z1, antiAffinity: ['web'] }),
      host('not-db', { tags: z1 }),
      host('ok', { tags: z1 }),
    ];
    const plan = planPlacement(snapshot(hosts, { db: 'ok' }), request);
    expect(plan).toEqual({
      candidates: ['ok'],
      leaders: 1,
      rejected: {
        maint: 'host is maintenance',
        down: 'host is down',
        'no-mem': 'not enough memory (1023 MiB free)',
        'no-cpu': 'not enough vCPUs (1 free at ratio 2)',
        'no-disk': 'not enough disk (9 GiB free)',
        untagged: 'missing tag zone=z1',
        'wrong-zone': 'missing tag zone=z1',
        anti: 'anti-affinity group web already on this host',
        'not-db': 'affinity group db is on ok',
      },
    });
    expect(planPlacement(snapshot(hosts), { ...small, host: 'nope' }).rejected).toEqual({
      nope: 'no such host',
    });
  });

  it.each<Case>([
    {
      what: 'state is checked before resources',
      snapshot: snapshot([host('a', { state: 'down', free: { memoryMiB: 0, vcpus: 0 } })]),
      request: small,
      candidates: [],
      rejected: { a: 'host is down' },
    },
    {
      what: 'memory is checked before vCPUs and disk',
      snapshot: snapshot([host('a', { free: { memoryMiB: 0, vcpus: 0, diskGiB: 0 } })]),
      request: small,
      candidates: [],
      rejected: { a: 'not enough memory (0 MiB free)' },
    },
    {
      what: 'resources are checked before tags and groups',
      snapshot: snapshot([host('a', { free: { diskGiB: 0 }, antiAffinity: ['web'] })], {
        db: 'b',
      }),
      request: { ...small, tags: { zone: 'z1' }, antiAffinity: ['web'], affinity: ['db'] },
      candidates: [],
      rejected: { a: 'not enough disk (0 GiB free)' },
    },
  ])('gives the first reason found: $what', run);
});

describe('planPlacement: order of candidates', () => {
  // Free memory / vCPUs of each host, in an order that is none of the expected ones.
  const hosts = [
    host('d', { free: { memoryMiB: 4096, vcpus: 4 } }),
    host('c', { free: { memoryMiB: 8192, vcpus: 6 } }),
    host('b', { free: { memoryMiB: 8192, vcpus: 2 } }),
    host('e', { free: { memoryMiB: 32768, vcpus: 2 } }),
    host('a', { free: { memoryMiB: 8192, vcpus: 6 } }),
  ];

  it.each<Case>([
    {
      what: 'spread: most free memory first, then most free vCPUs, then name',
      snapshot: snapshot(hosts),
      request: { ...small, policy: 'spread' },
      candidates: ['e', 'a', 'c', 'b', 'd'],
      rejected: {},
    },
    {
      what: 'pack: least free memory first, then least free vCPUs, then name',
      snapshot: snapshot(hosts),
      request: { ...small, policy: 'pack' },
      candidates: ['d', 'b', 'a', 'c', 'e'],
      rejected: {},
    },
    {
      what: 'no policy means spread',
      snapshot: snapshot(hosts),
      request: small,
      candidates: ['e', 'a', 'c', 'b', 'd'],
      rejected: {},
    },
    {
      what: 'spread: free memory outweighs free vCPUs',
      snapshot: snapshot([
        host('many-cpus', { free: { memoryMiB: 8192, vcpus: 64 } }),
        host('much-memory', { free: { memoryMiB: 32768, vcpus: 2 } }),
      ]),
      request: { ...small, policy: 'spread' },
      candidates: ['much-memory', 'many-cpus'],
      rejected: {},
    },
    {
      what: 'pack: free memory outweighs free vCPUs',
      snapshot: snapshot([
        host('much-memory', { free: { memoryMiB: 32768, vcpus: 2 } }),
        host('many-cpus', { free: { memoryMiB: 8192, vcpus: 64 } }),
      ]),
      request: { ...small, policy: 'pack' },
      candidates: ['many-cpus', 'much-memory'],
      rejected: {},
    },
    {
      what: 'disk plays no part in the order',
      snapshot: snapshot([
        host('a', { free: { diskGiB: 10 } }),
        host('b', { free: { diskGiB: 1000 } }),
      ]),
      request: { ...small, policy: 'spread' },
      candidates: ['a', 'b'],
      rejected: {},
    },
    {
      what: 'spread ties by name in code-point order, not locale order',
      snapshot: snapshot(['b', 'a', 'B', '9', '10', 'a-1', 'a.1', 'A'].map((n) => host(n))),
      request: { ...small, policy: 'spread' },
      candidates: ['10', '9', 'A', 'B', 'a', 'a-1', 'a.1', 'b'],
      rejected: {},
    },
    {
      what: 'pack ties by name ascending too',
      snapshot: snapshot(['b', 'a', 'B', '9', '10', 'a-1', 'a.1', 'A'].map((n) => host(n))),
      request: { ...small, policy: 'pack' },
      candidates: ['10', '9', 'A', 'B', 'a', 'a-1', 'a.1', 'b'],
      rejected: {},
    },
    {
      what: 'only candidates are ordered; rejected hosts do not appear',
      snapshot: snapshot([
        host('big', { state: 'down', free: { memoryMiB: 65536 } }),
        host('mid', { free: { memoryMiB: 8192 } }),
        host('low', { free: { memoryMiB: 2048 } }),
      ]),
      request: { ...small, policy: 'spread' },
      candidates: ['mid', 'low'],
      rejected: { big: 'host is down' },
    },
  ])('$what', run);

  it('does not change the snapshot it is given', () => {
    const snap = snapshot(hosts, { web: 'a' });
    const before = structuredClone(snap);
    planPlacement(snap, { ...small, policy: 'pack' });
    planPlacement(snap, { ...small, policy: 'spread', affinity: ['web'] });
    expect(snap).toEqual(before);
  });
});

describe('planPlacement: group names that are also Object.prototype keys', () => {
  // Known bug: these names pass the API's nameSchema, and the registry builds affinityHosts with
  // Object.fromEntries (a plain object with a prototype). The affinity filter reads
  // `s.affinityHosts[g]` without an own-property check, so it finds Object.prototype's method
  // and rejects every host with "affinity group constructor is on function Object() {...}".
  // The tag filter has the same lookup but fails safe: a method never equals a string value.
  it.each(['constructor', 'toString', 'valueOf', 'hasOwnProperty'])(
    'an affinity group %s with no members yet allows any host',
    (group) => {
      const snap = snapshot([host('a'), host('b')], Object.fromEntries([]));
      expect(planPlacement(snap, { ...small, affinity: [group] })).toMatchObject({
        candidates: ['a', 'b'],
        rejected: {},
      });
    },
  );

  it.each(['constructor', 'toString'])(
    'a required tag %s is missing from an untagged host',
    (key) => {
      expect(planPlacement(snapshot([host('a')]), { ...small, tags: { [key]: 'x' } })).toEqual({
        candidates: [],
        leaders: 0,
        rejected: { a: `missing tag ${key}=x` },
      });
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Properties. The model below is written out from the documented rules, independently of the
// code under test.

const GROUPS = ['g0', 'g1', 'g2', 'g3'];
const TAGS: Record<string, string[]> = { zone: ['z1', 'z2'], rack: ['r1', 'r2'], ssd: ['yes'] };

function passesEveryFilter(h: HostView, r: PlacementRequest, s: PlacementSnapshot): boolean {
  if (r.host !== undefined && h.name !== r.host) return false;
  if (h.state !== 'active') return false;
  // geats builds guests from its own templates: no seed, no kernel of vagoth's.
  if (h.driver === 'geats' && (r.features ?? []).length > 0) return false;
  if (h.free.memoryMiB < r.memoryMiB) return false;
  if (h.free.vcpus < r.vcpus) return false;
  if (h.free.diskGiB < r.diskGiB) return false;
  for (const [k, v] of Object.entries(r.tags ?? {})) {
    if (!Object.hasOwn(h.tags, k) || h.tags[k] !== v) return false;
  }
  for (const g of r.antiAffinity ?? []) if (h.antiAffinity.includes(g)) return false;
  for (const g of r.affinity ?? []) {
    if (Object.hasOwn(s.affinityHosts, g) && s.affinityHosts[g] !== h.name) return false;
  }
  return true;
}

function codePointCompare(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Negative when `a` must come strictly before `b` under the policy. */
function weigh(policy: PlacementPolicy, a: HostView, b: HostView): number {
  const sign = policy === 'spread' ? -1 : 1;
  if (a.free.memoryMiB !== b.free.memoryMiB) return sign * (a.free.memoryMiB - b.free.memoryMiB);
  if (a.free.vcpus !== b.free.vcpus) return sign * (a.free.vcpus - b.free.vcpus);
  return codePointCompare(a.name, b.name);
}

const subset = <T>(items: T[]) => fc.subarray(items);
const arbTags = fc
  .record(Object.fromEntries(Object.entries(TAGS).map(([k, vs]) => [k, fc.constantFrom(...vs)])), {
    requiredKeys: [],
  })
  .map((t) => Object.fromEntries(Object.entries(t)) as Record<string, string>);

/**
 * A free amount of 0..max units: mostly the full `max`, so that hosts often fit and tie with each
 * other, otherwise anything, so that requests often land exactly on it or one unit over.
 */
const amount = (max: number, unit = 1) =>
  fc
    .oneof(
      { arbitrary: fc.constant(max), weight: 2 },
      { arbitrary: fc.integer({ min: 0, max }), weight: 1 },
    )
    .map((n) => n * unit);

const arbHost = (name: string): fc.Arbitrary<HostView> =>
  fc.record({
    name: fc.constant(name),
    state: fc.constantFrom<HostState>(
      'active',
      'active',
      'active',
      'active',
      'maintenance',
      'down',
    ),
    driver: fc.constantFrom<HostDriver>('libvirt', 'libvirt', 'geats'),
    tags: arbTags,
    free: fc.record({ vcpus: amount(4), memoryMiB: amount(4, 512), diskGiB: amount(2) }),
    cpuRatio: fc.constantFrom(0.5, 1, 2, 4),
    antiAffinity: subset(GROUPS),
  });

// Names the API accepts (letters, digits, '_', '.', '-'): there, code-unit and code-point order agree.
const arbName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,4}$/);

const arbSnapshot: fc.Arbitrary<PlacementSnapshot> = fc
  .uniqueArray(arbName, { maxLength: 8, size: 'max' })
  .chain((names) =>
    fc.record({
      hosts: fc.tuple(...names.map(arbHost)),
      affinityHosts: fc
        .uniqueArray(fc.tuple(fc.constantFrom(...GROUPS), fc.constantFrom(...names, 'elsewhere')), {
          selector: ([g]) => g,
          maxLength: GROUPS.length,
        })
        .map((pairs) => Object.fromEntries(pairs)),
    }),
  );

// Most requests carry no constraint of a kind, so that several hosts often fit and get ordered.
const often = <T>(none: T, some: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: fc.constant(none), weight: 3 }, { arbitrary: some, weight: 1 });

const arbRequest: fc.Arbitrary<PlacementRequest> = fc.record(
  {
    vcpus: fc.integer({ min: 1, max: 4 }),
    memoryMiB: fc.integer({ min: 0, max: 4 }).map((n) => n * 512),
    diskGiB: fc.integer({ min: 0, max: 2 }),
    tags: often({}, arbTags),
    antiAffinity: often([], subset(GROUPS)),
    affinity: often([], subset(GROUPS)),
    policy: fc.constantFrom<PlacementPolicy>('spread', 'pack'),
    features: often([], subset<DriverFeature>(['cloud-init seed', 'direct kernel boot'])),
  },
  { requiredKeys: ['vcpus', 'memoryMiB', 'diskGiB'] },
);

/** A snapshot and a request hinting at one of its hosts or at an unknown one. */
const arbHinted = arbSnapshot.chain((snap) =>
  fc.tuple(
    fc.constant(snap),
    arbRequest,
    fc.constantFrom(...snap.hosts.map((h) => h.name), 'unknown-host'),
  ),
);

describe('planPlacement, for any snapshot and request without a hint', () => {
  it('lists every host either as a candidate or as rejected, never both, and nothing else', () => {
    fc.assert(
      fc.property(arbSnapshot, arbRequest, (snap, request) => {
        const plan = planPlacement(snap, request);
        const names = snap.hosts.map((h) => h.name);
        const rejected = Object.keys(plan.rejected);
        expect(new Set(plan.candidates).size).toBe(plan.candidates.length);
        expect(plan.candidates.filter((n) => rejected.includes(n))).toEqual([]);
        expect([...plan.candidates, ...rejected].sort()).toEqual([...names].sort());
      }),
    );
  });

  it('offers no candidate that fails a filter', () => {
    fc.assert(
      fc.property(arbSnapshot, arbRequest, (snap, request) => {
        const plan = planPlacement(snap, request);
        for (const name of plan.candidates) {
          const h = snap.hosts.find((x) => x.name === name)!;
          expect(passesEveryFilter(h, request, snap), name).toBe(true);
        }
      }),
    );
  });

  it('rejects only hosts that fail a filter', () => {
    fc.assert(
      fc.property(arbSnapshot, arbRequest, (snap, request) => {
        const plan = planPlacement(snap, request);
        for (const name of Object.keys(plan.rejected)) {
          const h = snap.hosts.find((x) => x.name === name)!;
          expect(passesEveryFilter(h, request, snap), name).toBe(false);
        }
      }),
    );
  });

  it('orders candidates by the requested weigher (spread when none is given)', () => {
    fc.assert(
      fc.property(arbSnapshot, arbRequest, (snap, request) => {
        const plan = planPlacement(snap, request);
        const byName = new Map(snap.hosts.map((h) => [h.name, h]));
        const policy = request.policy ?? 'spread';
        plan.candidates.slice(1).forEach((name, i) => {
          const prev = byName.get(plan.candidates[i]!)!;
          const next = byName.get(name)!;
          expect(weigh(policy, prev, next), `${policy}: ${prev.name} before ${name}`).toBeLessThan(
            0,
          );
        });
      }),
    );
  });

  it('gives every rejected host a non-empty reason', () => {
    fc.assert(
      fc.property(arbSnapshot, arbRequest, (snap, request) => {
        for (const why of Object.values(planPlacement(snap, request).rejected)) {
          expect(typeof why).toBe('string');
          expect(why).toMatch(/\S/);
        }
      }),
    );
  });
});

describe('planPlacement, for any snapshot and a hint', () => {
  it('considers the hinted host alone, or says there is no such host', () => {
    fc.assert(
      fc.property(arbHinted, ([snap, request, hint]) => {
        const req = { ...request, host: hint };
        const plan = planPlacement(snap, req);
        const hinted = snap.hosts.find((h) => h.name === hint);
        if (hinted && passesEveryFilter(hinted, req, snap)) {
          expect(plan).toEqual({ candidates: [hint], leaders: 1, rejected: {} });
        } else {
          expect(plan.candidates).toEqual([]);
          expect(Object.keys(plan.rejected)).toEqual([hint]);
          expect(plan.rejected[hint]).toMatch(hinted ? /\S/ : /^no such host$/);
        }
      }),
    );
  });
});

describe('claimOrder', () => {
  it('shuffles only the leaders, which the weigher cannot tell apart', () => {
    const tied = (free: number, name: string) =>
      host(name, { free: { vcpus: 8, memoryMiB: free, diskGiB: 100 } });
    const snap = snapshot([
      tied(4096, 'a'),
      tied(4096, 'b'),
      tied(4096, 'c'),
      tied(2048, 'd'),
      tied(1536, 'e'),
    ]);
    const plan = planPlacement(snap, small);
    expect(plan.leaders).toBe(3);
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const order = claimOrder(plan, Math.random);
      expect(new Set(order.slice(0, 3))).toEqual(new Set(['a', 'b', 'c']));
      expect(order.slice(3)).toEqual(['d', 'e']);
      seen.add(order[0]!);
    }
    // Concurrent placements really do start on different hosts.
    expect(seen.size).toBeGreaterThan(1);
  });

  it('keeps a strict winner first', () => {
    const plan = { candidates: ['best', 'next', 'last'], leaders: 1 };
    expect(claimOrder(plan, () => 0.99)).toEqual(['best', 'next', 'last']);
    expect(claimOrder({ candidates: [], leaders: 0 }, Math.random)).toEqual([]);
  });
});

describe('planPlacement and what a VM needs of its host driver', () => {
  it('keeps a VM with a seed or a kernel boot off geats hosts, saying why', () => {
    const snap = snapshot([
      host('g', { driver: 'geats' }),
      host('l', { free: { memoryMiB: 2048 } }),
    ]);
    for (const features of [['cloud-init seed'], ['direct kernel boot']] as DriverFeature[][]) {
      const plan = planPlacement(snap, { ...small, features });
      expect(plan.candidates).toEqual(['l']);
      expect(plan.rejected).toEqual({ g: `a geats host gives no ${features[0]}` });
    }
    // Without either, geats takes it like any host (it has the most room: spread picks it).
    expect(planPlacement(snap, small).candidates).toEqual(['g', 'l']);
  });

  it('finds no host when only geats hosts could have the room', () => {
    const snap = snapshot([host('g', { driver: 'geats' })]);
    const plan = planPlacement(snap, { ...small, host: 'g', features: ['cloud-init seed'] });
    expect(plan.candidates).toEqual([]);
    expect(plan.rejected).toEqual({ g: 'a geats host gives no cloud-init seed' });
  });
});
