import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intToIp, ipToInt, parseCidr } from '../../allocator/addresses.ts';
import { vagothErrorData } from '../../api/errors.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';

type CreateInput = Parameters<Harness['api']['vms']['create']>[0];
type Nic = NonNullable<CreateInput['nics']>[number];

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  // Room for every VM this file creates: 128 vCPUs at ratio 8, 64 GiB.
  const uri = await h.simulatedHost('hv', { cpus: 16, memoryMiB: 65536 });
  await h.api.hosts.register({ name: 'hv', driver: 'libvirt', uri, cpuRatio: 8 });
});
afterAll(async () => {
  await h?.close();
});

/** Creates a small VM with these NICs and waits for it to run. */
async function running(name: string, nics: Nic[]) {
  const { operation } = await h.api.vms.create({ name, vcpus: 1, memoryMiB: 64, nics });
  expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
  return h.api.vms.get({ name });
}

async function decommission(name: string) {
  const { operation } = await h.api.vms.decommission({ name });
  expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
}

const ipOf = (vm: { definition: { nics: Array<{ ip?: string }> } }, nic = 0) =>
  vm.definition.nics[nic]!.ip!;

async function keyCount(): Promise<number> {
  const [row] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM node_keys`;
  return row!.n;
}

async function vmRow(name: string): Promise<number> {
  const [row] = await h.sql<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM nodes WHERE name = ${name}`;
  return row!.n;
}

async function domainNames(): Promise<string[]> {
  const host = await h.api.hosts.get({ name: 'hv' });
  return (await h.worker.drivers.get(host).status()).domains.map((d) => d.name);
}

/**
 * No VM row, no key, no domain; and no create workflow unless one ran (a full network is only
 * found by the claim, inside the workflow).
 */
async function expectNothingLeft(name: string, keysBefore: number, { workflowRan = false } = {}) {
  expect(await vmRow(name)).toBe(0);
  expect(await keyCount()).toBe(keysBefore);
  expect(await domainNames()).not.toContain(name);
  if (!workflowRan) {
    await expect(h.temporal.workflow.getHandle(`vm:${name}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  }
}

/** The addresses at these offsets from the start of the CIDR. */
function addresses(cidr: string, offsets: number[]): string[] {
  const { base } = parseCidr(cidr);
  return offsets.map((o) => intToIp(base + o));
}

const byAddress = (ips: string[]) => [...ips].sort((a, b) => ipToInt(a) - ipToInt(b));

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('networks.create, list and get', () => {
  it('records the network and counts the addresses in use', async () => {
    const lan = await h.api.networks.create({
      name: 'lan',
      cidr: '172.16.1.0/24',
      gateway: '172.16.1.1',
      reserved: [
        { first: '172.16.1.200', last: '172.16.1.209' },
        { first: '172.16.1.100', last: '172.16.1.100' },
      ],
      // The gateway, a server outside the pool, a reserved address: in the order given.
      dns: ['172.16.1.1', '10.53.0.1', '172.16.1.100'],
    });
    expect(lan).toEqual({
      id: expect.any(String),
      name: 'lan',
      cidr: '172.16.1.0/24',
      gateway: '172.16.1.1',
      reserved: [
        { first: '172.16.1.100', last: '172.16.1.100' },
        { first: '172.16.1.200', last: '172.16.1.209' },
      ],
      dns: ['172.16.1.1', '10.53.0.1', '172.16.1.100'],
      used: 0,
      createdAt: expect.any(String),
    });
    expect(await h.api.networks.get({ name: 'lan' })).toEqual(lan);
    const bare = await h.api.networks.create({ name: 'bare', cidr: '192.168.7.0/24' });
    expect(bare).toMatchObject({ gateway: null, reserved: [], dns: [], used: 0 });

    const list = await h.api.networks.list();
    expect(list.map((n) => n.name)).toEqual(['bare', 'default', 'lan']);
    expect(list.find((n) => n.name === 'lan')).toEqual(lan);

    await running('used-1', [{ network: 'lan', ip: '172.16.1.50' }, { network: 'bare' }]);
    await running('used-2', [{ network: 'lan' }]);
    expect((await h.api.networks.get({ name: 'lan' })).used).toBe(2);
    expect((await h.api.networks.get({ name: 'bare' })).used).toBe(1);
    expect((await h.api.networks.get({ name: 'default' })).used).toBe(0);
    await decommission('used-1');
    const after = await h.api.networks.list();
    expect(after.map((n) => [n.name, n.used])).toEqual([
      ['bare', 0],
      ['default', 0],
      ['lan', 1],
    ]);
    await decommission('used-2');
  });

  it.each([
    ['inside it', '172.16.1.128/25'],
    ['around it', '172.16.0.0/16'],
    ['equal to it', '172.16.1.0/24'],
  ])('a CIDR overlapping another network (%s): CONFLICT naming that network', async (_w, cidr) => {
    const err = await refusal(h.api.networks.create({ name: 'overlap', cidr }));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toContain('network lan (172.16.1.0/24)');
    expect(vagothErrorData(err)).toEqual({
      type: 'KeyConflict',
      details: { key: `cidr:${cidr}`, holder: 'network lan (172.16.1.0/24)' },
    });
    await expect(h.api.networks.get({ name: 'overlap' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('a name already taken: CONFLICT, and the CIDR stays free', async () => {
    const err = await refusal(h.api.networks.create({ name: 'lan', cidr: '172.16.2.0/24' }));
    expect(err.code).toBe('CONFLICT');
    expect(vagothErrorData(err)).toEqual({
      type: 'KeyConflict',
      details: { key: 'network:lan', holder: 'network lan' },
    });
    expect((await h.api.networks.get({ name: 'lan' })).cidr).toBe('172.16.1.0/24');
    await h.api.networks.create({ name: 'lan-2', cidr: '172.16.2.0/24' });
  });

  it('overlapping networks created at once: one wins, the others get CONFLICT', async () => {
    // Rounds of nested ranges, where every pair overlaps: a lost race must still be a CONFLICT
    // naming the winner, however the inserts interleave.
    const unexpected: string[] = [];
    for (let round = 0; round < 20; round++) {
      const cidrs = [24, 25, 26, 27, 28, 29].map((bits) => `172.17.${round}.0/${bits}`);
      const results = await Promise.allSettled(
        cidrs.map((cidr, i) => h.api.networks.create({ name: `race-${round}-${i}`, cidr })),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won).toHaveLength(1);
      const winner = `network ${won[0]!.name} (${won[0]!.cidr})`;
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') return;
        const err = r.reason as TRPCError;
        if (err.code !== 'CONFLICT' || !err.message.endsWith(`is already held by ${winner}`)) {
          unexpected.push(`${cidrs[i]}: ${err.code} ${err.message}`);
        }
      });
      const listed = (await h.api.networks.list()).filter((n) =>
        n.name.startsWith(`race-${round}-`),
      );
      expect(listed).toEqual(won);
    }
    expect(unexpected).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    [
      'a gateway outside the CIDR',
      { gateway: '172.16.9.1' },
      'gateway',
      /not in 172\.16\.8\.0\/24/,
    ],
    ['the network address as gateway', { gateway: '172.16.8.0' }, 'gateway', /network address/],
    ['the broadcast address as gateway', { gateway: '172.16.8.255' }, 'gateway', /broadcast/],
    [
      'a reserved range running outside the CIDR',
      {
        reserved: [
          { first: '172.16.8.10', last: '172.16.8.20' },
          { first: '172.16.8.250', last: '172.16.9.5' },
        ],
      },
      'reserved.1',
      /172\.16\.9\.5 is not in 172\.16\.8\.0\/24/,
    ],
    [
      'a reserved range ending before it starts',
      { reserved: [{ first: '172.16.8.20', last: '172.16.8.10' }] },
      'reserved.0',
      /first is after last/,
    ],
    [
      'a DNS server inside the pool that a VM could be handed',
      { gateway: '172.16.8.1', dns: ['172.16.8.1', '172.16.8.53'] },
      'dns.1',
      /172\.16\.8\.53 lies in 172\.16\.8\.0\/24 and could be handed to a VM/,
    ],
    ['a loopback DNS server', { dns: ['10.53.0.1', '127.0.0.53'] }, 'dns.1', /loopback/],
    ['the broadcast address as DNS', { dns: ['172.16.8.255'] }, 'dns.0', /broadcast/],
    ['a multicast DNS server', { dns: ['224.0.0.251'] }, 'dns.0', /multicast/],
    ['a link-local DNS server', { dns: ['169.254.169.254'] }, 'dns.0', /link-local/],
    ['an unspecified DNS server', { dns: ['0.0.0.0'] }, 'dns.0', /not an address/],
    [
      'host bits set in the CIDR',
      { cidr: '172.16.8.5/24' },
      'cidr',
      /did you mean 172\.16\.8\.0\/24/,
    ],
  ])('%s: BAD_REQUEST naming the field', async (_what, fields, field, reason) => {
    const before = await h.api.networks.list();
    const err = await refusal(
      h.api.networks.create({ name: 'bad', cidr: '172.16.8.0/24', ...fields }),
    );
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message.startsWith(`${field}: `)).toBe(true);
    expect(err.message).toMatch(reason);
    expect(vagothErrorData(err)).toMatchObject({ type: 'InvalidRequest', details: { field } });
    expect(await h.api.networks.list()).toEqual(before);
  });

  it.each([
    [
      'five DNS servers',
      ['10.53.0.1', '10.53.0.2', '10.53.0.3', '10.53.0.4', '10.53.0.5'],
      ['dns'],
      /at most 4/,
    ],
    ['a DNS server named twice', ['10.53.0.1', '10.53.0.1'], ['dns'], /twice/],
    ['a DNS server that is no address', ['ns1.example'], ['dns', 0], /IPv4/],
  ])('%s: BAD_REQUEST naming the field', async (_what, dns, path, reason) => {
    const before = await h.api.networks.list();
    const err = await refusal(h.api.networks.create({ name: 'bad', cidr: '172.16.8.0/24', dns }));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.cause).toBeInstanceOf(z.ZodError);
    const issues = (err.cause as z.ZodError).issues;
    expect(issues.map((i) => i.path)).toEqual([path]);
    expect(issues[0]!.message).toMatch(reason);
    expect(await h.api.networks.list()).toEqual(before);
  });

  it('an unknown network: NOT_FOUND', async () => {
    expect(await refusal(h.api.networks.get({ name: 'nowhere' }))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('a node holding a key that is not an address does not break the counts', async () => {
    const node = await h.api.nodes.create({
      name: 'printer',
      type: 'device',
      keys: ['ip:printer-1'],
    });
    try {
      const list = await h.api.networks.list();
      expect(list.find((n) => n.name === 'lan')?.used).toBe(0);
      expect((await h.api.networks.get({ name: 'lan' })).used).toBe(0);
    } finally {
      await h.api.nodes.delete({ id: node.id });
    }
  });
});

describe('a NIC without an IP gets the next free address', () => {
  it('never the network, broadcast, gateway or a reserved address; then the network is full', async () => {
    const cidr = '172.16.20.0/28';
    await h.api.networks.create({
      name: 'tiny',
      cidr,
      gateway: '172.16.20.1',
      reserved: [
        { first: '172.16.20.2', last: '172.16.20.4' },
        { first: '172.16.20.9', last: '172.16.20.9' },
      ],
    });
    // .1 .. .14 are host addresses; minus the gateway and four reserved, nine are left.
    const usable = addresses(cidr, [5, 6, 7, 8, 10, 11, 12, 13, 14]);
    const names = usable.map((_, i) => `tiny-${i}`);
    const vms = await Promise.all(names.map((name) => running(name, [{ network: 'tiny' }])));
    const ips = vms.map((vm) => ipOf(vm));
    expect(byAddress(ips)).toEqual(usable);
    for (const vm of vms) expect(vm.keys).toContain(`ip:${ipOf(vm)}`);
    expect((await h.api.networks.get({ name: 'tiny' })).used).toBe(usable.length);

    const keysBefore = await keyCount();
    const hostBefore = (await h.api.hosts.get({ name: 'hv' })).allocated;
    const err = await refusal(
      h.api.vms.create({
        name: 'tiny-extra',
        vcpus: 1,
        memoryMiB: 64,
        nics: [{ network: 'tiny' }],
      }),
    );
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toContain('nics.0.network');
    expect(err.message).toContain('full');
    expect(vagothErrorData(err)).toMatchObject({ details: { field: 'nics.0.network' } });
    // The claim ran in a workflow, which failed: it holds nothing.
    await expectNothingLeft('tiny-extra', keysBefore, { workflowRan: true });
    expect((await h.api.hosts.get({ name: 'hv' })).allocated).toEqual(hostBefore);
    expect((await h.api.networks.get({ name: 'tiny' })).used).toBe(usable.length);
    await Promise.all(names.map(decommission));
  });

  it('an address returns to the pool on decommission and is handed out again', async () => {
    const cidr = '172.16.21.0/29';
    await h.api.networks.create({ name: 'small', cidr, gateway: '172.16.21.1' });
    const names = range(1, 5).map((i) => `small-${i}`);
    const vms = [];
    for (const name of names) vms.push(await running(name, [{ network: 'small' }]));
    expect(byAddress(vms.map((vm) => ipOf(vm)))).toEqual(addresses(cidr, range(2, 6)));
    const full = await refusal(
      h.api.vms.create({ name: 'small-6', vcpus: 1, memoryMiB: 64, nics: [{ network: 'small' }] }),
    );
    expect(full.message).toMatch(/nics\.0\.network: .*full/);

    const freed = ipOf(vms[2]!);
    await decommission(names[2]!);
    expect((await h.api.networks.get({ name: 'small' })).used).toBe(4);
    const again = await running('small-new', [{ network: 'small' }]);
    expect(ipOf(again)).toBe(freed);
    expect((await h.api.nodes.get({ key: `ip:${freed}` })).name).toBe('small-new');
  });

  it('40 creates at once on a /26: 40 distinct addresses', async () => {
    const cidr = '172.16.40.0/26';
    await h.api.networks.create({ name: 'burst', cidr, gateway: '172.16.40.1' });
    const names = range(1, 40).map((i) => `burst-${i}`);
    const vms = await Promise.all(names.map((name) => running(name, [{ network: 'burst' }])));
    const ips = vms.map((vm) => ipOf(vm));
    expect(new Set(ips).size).toBe(40);
    const allowed = new Set(addresses(cidr, range(2, 62)));
    for (const ip of ips) expect(allowed.has(ip)).toBe(true);
    expect((await h.api.networks.get({ name: 'burst' })).used).toBe(40);
    const holders = await h.sql<{ key: string; n: number }[]>`
      SELECT key, count(*)::int AS n FROM node_keys WHERE key LIKE 'ip:172.16.40.%' GROUP BY key`;
    expect(holders).toHaveLength(40);
    expect(holders.every((r) => r.n === 1)).toBe(true);
    expect((await domainNames()).filter((d) => d.startsWith('burst-'))).toHaveLength(40);
  });

  it('a NIC without an IP never takes the address another NIC of the same VM asks for', async () => {
    // A /30 has two host addresses: one NIC asks for .2, the other must get .1. Twice, since
    // where a search starts moves on with each create.
    await h.api.networks.create({ name: 'pair', cidr: '172.16.22.0/30' });
    for (const attempt of [1, 2]) {
      const name = `pair-${attempt}`;
      const created = await h.api.vms
        .create({
          name,
          vcpus: 1,
          memoryMiB: 64,
          nics: [{ network: 'pair' }, { network: 'pair', ip: '172.16.22.2' }],
        })
        .then(
          async ({ operation }) => ({ outcome: await settle(h, operation) }),
          (err: TRPCError) => ({ refused: `${err.code}: ${err.message}` }),
        );
      expect(created).toEqual({ outcome: expect.objectContaining({ status: 'completed' }) });
      const vm = await h.api.vms.get({ name });
      expect([ipOf(vm, 0), ipOf(vm, 1)]).toEqual(['172.16.22.1', '172.16.22.2']);
      await decommission(name);
    }
  });
});

describe('a NIC asking for an address the network cannot give', () => {
  beforeAll(async () => {
    await h.api.networks.create({
      name: 'fixed',
      cidr: '172.16.30.0/24',
      gateway: '172.16.30.1',
      reserved: [{ first: '172.16.30.200', last: '172.16.30.250' }],
    });
  });

  it.each([
    ['outside the network', '172.16.31.5', /172\.16\.31\.5 is not in 172\.16\.30\.0\/24/],
    ['the gateway', '172.16.30.1', /is the gateway/],
    ['reserved', '172.16.30.220', /reserved \(172\.16\.30\.200-172\.16\.30\.250\)/],
    ['the network address', '172.16.30.0', /network address/],
    ['the broadcast address', '172.16.30.255', /broadcast address/],
  ])('%s: BAD_REQUEST naming nics.0.ip, nothing created', async (what, ip, reason) => {
    const name = `fixed-${what.replaceAll(' ', '-')}`;
    const keysBefore = await keyCount();
    const err = await refusal(
      h.api.vms.create({ name, vcpus: 1, memoryMiB: 64, nics: [{ network: 'fixed', ip }] }),
    );
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message.startsWith('nics.0.ip: ')).toBe(true);
    expect(err.message).toMatch(reason);
    expect(vagothErrorData(err)).toMatchObject({
      type: 'InvalidRequest',
      details: { field: 'nics.0.ip' },
    });
    await expectNothingLeft(name, keysBefore);
  });

  it('an unknown network: BAD_REQUEST naming nics.0.network, nothing created', async () => {
    const keysBefore = await keyCount();
    const err = await refusal(
      h.api.vms.create({
        name: 'lost',
        vcpus: 1,
        memoryMiB: 64,
        nics: [{ network: 'fixed', ip: '172.16.30.7' }, { network: 'nowhere' }],
      }),
    );
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toBe('nics.1.network: no network named nowhere');
    const first = await refusal(
      h.api.vms.create({ name: 'lost', vcpus: 1, memoryMiB: 64, nics: [{ network: 'nowhere' }] }),
    );
    expect(first.code).toBe('BAD_REQUEST');
    expect(vagothErrorData(first)).toMatchObject({ details: { field: 'nics.0.network' } });
    await expectNothingLeft('lost', keysBefore);
  });
});
