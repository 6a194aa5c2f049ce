import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { isSafeText, MAX_JSON_DEPTH } from '../../api/safe-input.ts';
import { instanceCreateInput } from '../../cloud/api/schemas.ts';
import {
  hostRegisterInput,
  nodeChangeKeysInput,
  nodeCreateInput,
  nodeListInput,
  nodeMetadataInput,
  nodeTagsInput,
  operationGetInput,
  placementExplainInput,
  vmCreateInput,
} from '../../api/schemas.ts';

type Path = (string | number)[];

/** The paths of the issues a bad input raises; every one must point at the field that is wrong. */
function issuePaths(schema: z.ZodType, input: unknown): Path[] {
  const result = schema.safeParse(input);
  expect(result.success, 'input was accepted').toBe(false);
  return (result.error?.issues ?? []).map((i) => i.path as Path);
}

const vm = { name: 'web-1', vcpus: 2, memoryMiB: 512 };
const nic = (o: Record<string, unknown>) => ({ network: 'default', ...o });
const withNics = (...nics: Record<string, unknown>[]) => ({ ...vm, nics });
const { name: _name, ...vmWithoutName } = vm;

describe('vmCreateInput refuses a bad field and names it', () => {
  it.each<[string, unknown, Path]>([
    ['negative memory', { ...vm, memoryMiB: -512 }, ['memoryMiB']],
    ['zero memory', { ...vm, memoryMiB: 0 }, ['memoryMiB']],
    ['fractional memory', { ...vm, memoryMiB: 512.5 }, ['memoryMiB']],
    ['memory as a string', { ...vm, memoryMiB: '512' }, ['memoryMiB']],
    ['NaN memory', { ...vm, memoryMiB: Number.NaN }, ['memoryMiB']],
    ['non-integer vcpus', { ...vm, vcpus: 1.5 }, ['vcpus']],
    ['zero vcpus', { ...vm, vcpus: 0 }, ['vcpus']],
    ['negative vcpus', { ...vm, vcpus: -1 }, ['vcpus']],
    ['missing vcpus', { name: 'web-1', memoryMiB: 512 }, ['vcpus']],
    ['an IP octet above 255', withNics(nic({ ip: '10.0.0.256' })), ['nics', 0, 'ip']],
    [
      'an IP that is a word, on the second NIC',
      withNics(nic({ ip: '10.0.0.1' }), nic({ ip: 'abc' })),
      ['nics', 1, 'ip'],
    ],
    ['an IP with three octets', withNics(nic({ ip: '10.0.1' })), ['nics', 0, 'ip']],
    ['an IPv6 address', withNics(nic({ ip: '::1' })), ['nics', 0, 'ip']],
    ['a MAC with five octets', withNics(nic({ mac: '52:54:00:12:34' })), ['nics', 0, 'mac']],
    ['a MAC with non-hex digits', withNics(nic({ mac: '52:54:00:zz:34:56' })), ['nics', 0, 'mac']],
    ['a MAC with dashes', withNics(nic({ mac: '52-54-00-12-34-56' })), ['nics', 0, 'mac']],
    ['a multicast MAC', withNics(nic({ mac: '01:00:5e:00:00:01' })), ['nics', 0, 'mac']],
    ['the broadcast MAC', withNics(nic({ mac: 'ff:ff:ff:ff:ff:ff' })), ['nics', 0, 'mac']],
    [
      'the same IP on two NICs',
      withNics(nic({ ip: '10.0.0.5' }), nic({ ip: '10.0.0.5' })),
      ['nics', 1, 'ip'],
    ],
    [
      'the same MAC on two NICs, in different case',
      withNics(nic({ mac: '52:54:00:AA:BB:CC' }), nic({ mac: '52:54:00:aa:bb:cc' })),
      ['nics', 1, 'mac'],
    ],
    ['a network name with markup', withNics({ network: '<net>' }), ['nics', 0, 'network']],
    ['a NIC without a network', withNics({ ip: '10.0.0.5' }), ['nics', 0, 'network']],
    ['seventeen NICs', withNics(...Array.from({ length: 17 }, () => nic({}))), ['nics']],
    ['a missing name', vmWithoutName, ['name']],
    ['an empty name', { ...vm, name: '' }, ['name']],
    ['a name with <', { ...vm, name: 'web<1' }, ['name']],
    ["a name with '", { ...vm, name: "o'brien" }, ['name']],
    ['a name with a space', { ...vm, name: 'web 1' }, ['name']],
    ['a name with /', { ...vm, name: 'web/1' }, ['name']],
    ['a name with a trailing newline', { ...vm, name: 'web-1\n' }, ['name']],
    ['a name starting with -', { ...vm, name: '-web' }, ['name']],
    ['a 64-character name', { ...vm, name: 'a'.repeat(64) }, ['name']],
    [
      'a placement host with a space',
      { ...vm, placement: { host: 'hv 1' } },
      ['placement', 'host'],
    ],
    ['an empty tag key', { ...vm, tags: { '': 'x' } }, ['tags', '']],
  ])('%s', (_what, input, path) => {
    const paths = issuePaths(vmCreateInput, input);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(p).toEqual(path);
  });
});

const host = { name: 'hv1', driver: 'libvirt', uri: 'qemu:///system' };

const instance = { project: 'shop', name: 'web-1', vcpus: 1, memoryMiB: 512, image: 'debian-12' };

describe("the cloud's instanceCreateInput refuses a bad placement and names it", () => {
  it.each<[string, unknown, Path]>([
    ['five anti-affinity groups', { antiAffinity: ['a', 'b', 'c', 'd', 'e'] }, ['antiAffinity']],
    // The cluster sees `<project>.<group>`: a '.' in the group would let it pose as another's.
    ['a group with a dot', { antiAffinity: ['other.db'] }, ['antiAffinity', 0]],
    ['a group of 32 characters', { antiAffinity: ['g'.repeat(32)] }, ['antiAffinity', 0]],
    ['a cluster not a name', { excludeClusters: ['Far'] }, ['excludeClusters', 0]],
    [
      '65 clusters',
      { excludeClusters: Array.from({ length: 65 }, (_, i) => `c${i}`) },
      ['excludeClusters'],
    ],
  ])('%s', (_, placement, path) => {
    expect(issuePaths(instanceCreateInput, { ...instance, placement })).toEqual([
      ['placement', ...path],
    ]);
  });
});

describe('hostRegisterInput refuses a bad field and names it', () => {
  it.each<[string, unknown, Path]>([
    ['a URI without a scheme', { ...host, uri: '/var/run/libvirt/libvirt-sock' }, ['uri']],
    ['a URI with one slash', { ...host, uri: 'qemu:/system' }, ['uri']],
    ['a URI with a space', { ...host, uri: 'qemu:///sys tem' }, ['uri']],
    ['an empty URI', { ...host, uri: '' }, ['uri']],
    ['a URI over 1024 characters', { ...host, uri: `test:///${'a'.repeat(1024)}` }, ['uri']],
    ['a driver other than libvirt', { ...host, driver: 'xen' }, ['driver']],
    ['a missing driver', { name: 'hv1', uri: 'qemu:///system' }, ['driver']],
    ['a name with <', { ...host, name: 'hv<1' }, ['name']],
    ['a missing name', { driver: 'libvirt', uri: 'qemu:///system' }, ['name']],
    ['a geats URI on a libvirt host', { ...host, uri: 'geats:///usr/bin/geats-agent' }, ['uri']],
    ['vCPUs declared for a libvirt host', { ...host, vcpus: 8 }, ['vcpus']],
  ])('%s', (_what, input, path) => {
    const paths = issuePaths(hostRegisterInput, input);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(p).toEqual(path);
  });
});

const geats = { name: 'hv1', driver: 'geats', uri: 'geats:///usr/bin/geats-agent', vcpus: 8 };
const { vcpus: _vcpus, ...geatsWithoutVcpus } = geats;

describe('hostRegisterInput refuses a bad geats host and names the field', () => {
  it.each<[string, unknown, Path]>([
    ['no vCPUs (geats reports none)', geatsWithoutVcpus, ['vcpus']],
    ['zero vCPUs', { ...geats, vcpus: 0 }, ['vcpus']],
    ['fractional vCPUs', { ...geats, vcpus: 1.5 }, ['vcpus']],
    ['a libvirt URI', { ...geats, uri: 'qemu:///system' }, ['uri']],
    ['a relative agent path', { ...geats, uri: 'geats://bin/geats-agent' }, ['uri']],
    ['a local URI without a path', { ...geats, uri: 'geats:///' }, ['uri']],
    ['an agent path ending in /', { ...geats, uri: 'geats:///usr/bin/' }, ['uri']],
    ['an agent path with ..', { ...geats, uri: 'geats:///usr/../tmp/agent' }, ['uri']],
    ['an agent path with a space', { ...geats, uri: 'geats:///usr/bin/geats agent' }, ['uri']],
    ['an agent path with ;', { ...geats, uri: 'geats+ssh://root@hv1/bin/agent;reboot' }, ['uri']],
    ['an agent path with $()', { ...geats, uri: 'geats+ssh://root@hv1/bin/$(id)' }, ['uri']],
    [
      'an SSH URI without a user',
      { ...geats, uri: 'geats+ssh://hv1/usr/bin/geats-agent' },
      ['uri'],
    ],
    ['an SSH URI without a path', { ...geats, uri: 'geats+ssh://root@hv1' }, ['uri']],
    ['port 0', { ...geats, uri: 'geats+ssh://root@hv1:0/usr/bin/geats-agent' }, ['uri']],
    ['port 65536', { ...geats, uri: 'geats+ssh://root@hv1:65536/usr/bin/agent' }, ['uri']],
    ['another scheme', { ...geats, uri: 'geats+tcp://root@hv1/usr/bin/agent' }, ['uri']],
  ])('%s', (_what, input, path) => {
    const paths = issuePaths(hostRegisterInput, input);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(p).toEqual(path);
  });

  it('says what a geats URI looks like', () => {
    const result = hostRegisterInput.safeParse({ ...geats, uri: 'geats://hv1/usr/bin/agent' });
    expect(result.error?.issues[0]?.message).toContain('geats:///absolute/path');
  });
});

describe('good inputs parse', () => {
  it('fills in no disk, NICs, tags or placement rules by default; a failed create is removed', () => {
    expect(vmCreateInput.parse(vm)).toEqual({
      ...vm,
      diskGiB: 0,
      disks: [],
      sshAuthorizedKeys: [],
      nics: [],
      tags: {},
      placement: {},
      onFailure: 'remove',
    });
  });

  it('lowercases MACs and keeps everything else as given', () => {
    const input = {
      name: `${'a'.repeat(62)}9`,
      vcpus: 256,
      memoryMiB: 16,
      nics: [
        { network: 'default', ip: '10.0.0.5', mac: '52:54:00:AB:CD:EF' },
        { network: 'storage_net.2', ip: '192.168.255.255' },
      ],
      tags: { role: 'web', team: '' },
      placement: { host: 'hv1' },
      onFailure: 'keep',
    };
    expect(vmCreateInput.parse(input)).toEqual({
      ...input,
      diskGiB: 0,
      disks: [],
      sshAuthorizedKeys: [],
      nics: [{ network: 'default', ip: '10.0.0.5', mac: '52:54:00:ab:cd:ef' }, input.nics[1]],
    });
  });

  it.each([
    'geats:///usr/bin/geats-agent',
    'geats+ssh://root@hv1/usr/bin/geats-agent',
    'geats+ssh://vagoth@hv1.dc1.example.org:2222/opt/geats/bin/mc_agent.py',
    'geats+ssh://vagoth@[2001:db8::1]:22/usr/bin/geats-agent',
  ])('registers a geats host at %s with its declared vCPUs', (uri) => {
    expect(hostRegisterInput.parse({ ...geats, uri })).toEqual({
      ...geats,
      uri,
      cpuRatio: 1,
      memoryRatio: 1,
      diskGiB: 0,
      tags: {},
    });
  });

  it.each(['qemu:///system', 'qemu+ssh://root@hv1/system', 'test:///tmp/hosts/hv1.xml'])(
    'registers a host at %s',
    (uri) => {
      // Without ratios, disk or tags: nothing overcommitted, no disk offered.
      expect(hostRegisterInput.parse({ ...host, uri })).toEqual({
        ...host,
        uri,
        cpuRatio: 1,
        memoryRatio: 1,
        diskGiB: 0,
        tags: {},
      });
    },
  );
});

describe('isSafeText: what PostgreSQL stores as it was sent, and nothing a terminal acts on', () => {
  it.each<[string, string, boolean]>([
    ['plain text', 'web server, rack 4', true],
    ['empty', '', true],
    ['a tab and a newline', 'a\tb\nc', true],
    ['non-Latin letters', 'Größe, 大きさ, размер', true],
    ['a surrogate pair (an emoji)', 'ok \ud83d\ude00', true],
    ['a lone high surrogate', '\ud800', false],
    ['a lone high surrogate before text', '\ud83dx', false],
    ['a lone low surrogate', 'x\ude00', false],
    ['two high surrogates', '\ud83d\ud83d\ude00', false],
    ['NUL', 'a\u0000b', false],
    ['a carriage return', 'a\rb', false],
    ['escape', '\u001b[31m', false],
    ['DEL', '\u007f', false],
    ['a C1 control', '\u0085', false],
  ])('%s: %s', (_what, text, safe) => {
    expect(isSafeText(text)).toBe(safe);
  });
});

const tags = (n: number, value = 'v') =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));
const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { a: nested(depth - 1) });
const node = { name: 'n1', type: 'thing' };

describe('every string, key and value of the input is safe, and every record bounded', () => {
  it.each<[string, z.ZodType, unknown, Path]>([
    [
      'a lone surrogate in a tag value',
      vmCreateInput,
      { ...vm, tags: { a: '\ud800' } },
      ['tags', 'a'],
    ],
    [
      'a lone surrogate in a tag key',
      vmCreateInput,
      { ...vm, tags: { '\ud800': 'x' } },
      ['tags', '\ud800'],
    ],
    [
      'a control character in a tag',
      vmCreateInput,
      { ...vm, tags: { a: 'x\u0001' } },
      ['tags', 'a'],
    ],
    ['65 tags', vmCreateInput, { ...vm, tags: tags(65) }, ['tags']],
    ['a thousand tags', vmCreateInput, { ...vm, tags: tags(1000) }, ['tags']],
    ['tags over 16 KiB', vmCreateInput, { ...vm, tags: tags(64, 'x'.repeat(256)) }, ['tags']],
    [
      'a lone surrogate in a placement tag',
      vmCreateInput,
      { ...vm, placement: { tags: { rack: '\udfff' } } },
      ['placement', 'tags', 'rack'],
    ],
    [
      'nine anti-affinity groups',
      vmCreateInput,
      { ...vm, placement: { antiAffinity: Array.from({ length: 9 }, (_, i) => `g${i}`) } },
      ['placement', 'antiAffinity'],
    ],
    [
      'a lone surrogate in placement.explain tags',
      placementExplainInput,
      { vcpus: 1, memoryMiB: 64, placement: { tags: { a: '\ud800' } } },
      ['placement', 'tags', 'a'],
    ],
    [
      'a lone surrogate in a host tag',
      hostRegisterInput,
      { ...host, tags: { a: '\ud800' } },
      ['tags', 'a'],
    ],
    [
      'a control character in a URI',
      hostRegisterInput,
      { ...host, uri: 'qemu:///sys\u0000' },
      ['uri'],
    ],
    [
      'a lone surrogate in a node tag',
      nodeCreateInput,
      { ...node, tags: { a: '\ud800' } },
      ['tags', 'a'],
    ],
    [
      'a lone surrogate in a node key',
      nodeCreateInput,
      { ...node, keys: ['ip:\ud800'] },
      ['keys', 0],
    ],
    [
      'a control character in a node key',
      nodeCreateInput,
      { ...node, keys: ['ip:1\u0007'] },
      ['keys', 0],
    ],
    [
      'a lone surrogate in metadata',
      nodeCreateInput,
      { ...node, metadata: { a: '\ud800' } },
      ['metadata', 'a'],
    ],
    [
      'a lone surrogate deep in a definition',
      nodeCreateInput,
      { ...node, definition: { a: [{ b: ['ok', 'x\udc00'] }] } },
      ['definition', 'a', 0, 'b', 1],
    ],
    [
      'a lone surrogate in a nested key',
      nodeCreateInput,
      { ...node, metadata: { a: { '\ud800': 1 } } },
      ['metadata', 'a', '\ud800'],
    ],
    [
      'a lone surrogate in a metadata key',
      nodeCreateInput,
      { ...node, metadata: { '\ud800': 1 } },
      ['metadata', '\ud800'],
    ],
    [
      'metadata nested too deep',
      nodeCreateInput,
      { ...node, metadata: { a: nested(MAX_JSON_DEPTH) } },
      ['metadata', 'a', ...Array<string>(MAX_JSON_DEPTH).fill('a')],
    ],
    [
      'metadata over 64 KiB',
      nodeCreateInput,
      { ...node, metadata: { a: 'x'.repeat(70_000) } },
      ['metadata'],
    ],
    ['129 metadata keys', nodeCreateInput, { ...node, metadata: tags(129) }, ['metadata']],
    [
      'a lone surrogate in a metadata patch',
      nodeMetadataInput,
      { name: 'n1', patch: { a: '\ud800' } },
      ['patch', 'a'],
    ],
    [
      'a lone surrogate in a tag patch',
      nodeTagsInput,
      { name: 'n1', patch: { a: '\ud800' } },
      ['patch', 'a'],
    ],
    ['65 tags in a patch', nodeTagsInput, { name: 'n1', patch: tags(65) }, ['patch']],
    [
      'a lone surrogate in a claimed key',
      nodeChangeKeysInput,
      { name: 'n1', claim: ['x:\ud800'] },
      ['claim', 0],
    ],
    [
      'a lone surrogate in a listed tag',
      nodeListInput,
      { tag: { key: 'a', value: '\ud800' } },
      ['tag', 'value'],
    ],
    ['a lone surrogate in an operation id', operationGetInput, { id: 'vm:\ud800' }, ['id']],
    [
      'a control character in an update id',
      operationGetInput,
      { id: 'vm:a', updateId: '\u0000' },
      ['updateId'],
    ],
  ])('%s', (_what, schema, input, path) => {
    const paths = issuePaths(schema, input);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(p).toEqual(path);
  });

  it.each<[string, z.ZodType, unknown]>([
    ['64 tags of 200 bytes', vmCreateInput, { ...vm, tags: tags(64, 'x'.repeat(200)) }],
    ['an emoji in a tag', vmCreateInput, { ...vm, tags: { mood: '\ud83d\ude00' } }],
    [
      'a newline and a tab in metadata',
      nodeCreateInput,
      { ...node, metadata: { notes: 'a\tb\nc' } },
    ],
    [
      'metadata nested to the limit',
      nodeCreateInput,
      { ...node, metadata: { a: nested(MAX_JSON_DEPTH - 1) } },
    ],
    ['a metadata patch removing a key', nodeMetadataInput, { name: 'n1', patch: { a: null } }],
  ])('accepts %s', (_what, schema, input) => {
    expect(schema.safeParse(input).error?.issues).toBeUndefined();
  });

  it('a hundred thousand bad values raise a few issues, not a hundred thousand', () => {
    const metadata = { a: Array.from({ length: 100_000 }, () => '\ud800') };
    expect(issuePaths(nodeCreateInput, { ...node, metadata }).length).toBeLessThanOrEqual(10);
  });
});
