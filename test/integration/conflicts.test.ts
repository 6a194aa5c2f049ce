import type { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateConflictError } from '../../registry/errors.ts';
import { getVm, transitionVm } from '../../registry/vms.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({ name: 'hv', driver: 'libvirt', uri: await h.simulatedHost('hv') });
});
afterAll(async () => {
  await h?.close();
});

async function holders(key: string): Promise<string[]> {
  const rows = await h.sql<{ name: string }[]>`
    SELECT n.name FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE k.key = ${key}`;
  return rows.map((r) => r.name);
}

async function race(a: Parameters<Harness['api']['vms']['create']>[0], b: typeof a) {
  const results = await Promise.allSettled([h.api.vms.create(a), h.api.vms.create(b)]);
  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as TRPCError] : []));
  return { won, lost };
}

async function domainNames(): Promise<string[]> {
  const host = await h.api.hosts.get({ name: 'hv' });
  return (await h.worker.drivers.get(host).status()).domains.map((d) => d.name);
}

describe('two creates asking for the same key: exactly one wins', () => {
  it.each([
    ['IP', { ip: '10.2.0.7' }, 'ip:10.2.0.7'],
    ['MAC', { mac: '52:54:00:AA:BB:CC' }, 'mac:52:54:00:aa:bb:cc'],
  ])('the same %s', async (label, nic, key) => {
    const a = `${label.toLowerCase()}-a`;
    const b = `${label.toLowerCase()}-b`;
    const { won, lost } = await race(
      { name: a, vcpus: 1, memoryMiB: 256, nics: [{ network: 'default', ...nic }] },
      { name: b, vcpus: 1, memoryMiB: 256, nics: [{ network: 'default', ...nic }] },
    );
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = won[0]!.vm.name;
    const loser = winner === a ? b : a;
    expect(lost[0]).toMatchObject({ code: 'CONFLICT' });
    expect(lost[0]!.message).toContain(key);
    expect(lost[0]!.message).toContain(`vm ${winner}`);
    await settle(h, won[0]!.operation);
    expect(await holders(key)).toEqual([winner]);
    await expect(h.api.vms.get({ name: loser })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await domainNames()).not.toContain(loser);
  });

  it('the same name with different definitions', async () => {
    const { won, lost } = await race(
      { name: 'dup', vcpus: 1, memoryMiB: 256, nics: [{ network: 'default', ip: '10.2.1.1' }] },
      { name: 'dup', vcpus: 2, memoryMiB: 512, nics: [{ network: 'default', ip: '10.2.1.2' }] },
    );
    expect(won).toHaveLength(1);
    expect(lost[0]).toMatchObject({ code: 'CONFLICT' });
    expect(lost[0]!.message).toContain('name:dup');
    await settle(h, won[0]!.operation);
    const vm = await h.api.vms.get({ name: 'dup' });
    expect(vm.definition.vcpus).toBe(won[0]!.vm.definition.vcpus);
    // The loser's IP was never claimed.
    const loserIp = vm.definition.vcpus === 1 ? 'ip:10.2.1.2' : 'ip:10.2.1.1';
    expect(await holders(loserIp)).toEqual([]);
    // Once created, the name stays taken.
    await expect(h.api.vms.create({ name: 'dup', vcpus: 1, memoryMiB: 256 })).rejects.toMatchObject(
      { code: 'CONFLICT' },
    );
  });

  it('a retried request finds the operation already under way', async () => {
    const request = {
      name: 'retried',
      vcpus: 1,
      memoryMiB: 256,
      nics: [{ network: 'default', ip: '10.2.2.2' }],
    };
    const [first, second] = await Promise.all([
      h.api.vms.create(request),
      h.api.vms.create(request),
    ]);
    expect(second.operation).toEqual(first.operation);
    expect(second.vm.id).toBe(first.vm.id);
    expect(await settle(h, first.operation)).toMatchObject({ status: 'completed' });
    expect((await h.api.vms.list()).filter((v) => v.name === 'retried')).toHaveLength(1);
  });
});

describe("a VM's state is compare-and-set", () => {
  it('a step re-run by the operation that has gone on is a no-op; any other operation is refused', async () => {
    const { operation } = await h.api.vms.create({ name: 'cas', vcpus: 1, memoryMiB: 256 });
    await settle(h, operation);
    const vm = await getVm(h.sql, 'cas');
    expect(vm.state).toBe('running');
    const create = vm.operation!;

    // The create's first step, re-run after the create reached `running` (as local activities
    // are, after a worker crash): nothing changes.
    await transitionVm(h.sql, vm.id, ['pending'], 'placing', { operation: create });
    expect((await getVm(h.sql, 'cas')).state).toBe('running');

    // The same step from an operation that never moved the VM: refused.
    const other = { ...create, updateId: 'someone-else' };
    await expect(
      transitionVm(h.sql, vm.id, ['pending'], 'placing', { operation: other }),
    ).rejects.toBeInstanceOf(StateConflictError);

    // Once the operation has failed the VM, its own steps cannot carry it on.
    await transitionVm(h.sql, vm.id, 'any', 'failed', { operation: create, error: 'test' });
    await expect(
      transitionVm(h.sql, vm.id, ['starting'], 'running', { operation: create }),
    ).rejects.toBeInstanceOf(StateConflictError);
    expect((await getVm(h.sql, 'cas')).state).toBe('failed');
    await settle(h, (await h.api.vms.decommission({ name: 'cas' })).operation);
  });
});
