import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { hostRegisterInput, vmCreateInput } from '../../api/schemas.ts';

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
