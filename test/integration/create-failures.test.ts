import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultyDriverFactory, rejected } from '../support/faulty-driver.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { testDrivers as createDriver } from '../support/host-uris.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    driverFactory: faultyDriverFactory(createDriver, {
      define: (name) =>
        name.startsWith('bad-define')
          ? rejected('unsupported configuration: no such machine')
          : null,
      start: (name) =>
        name.startsWith('bad-start') ? rejected('unsupported configuration: cannot boot') : null,
    }),
  });
  await h.api.hosts.register({
    name: 'small',
    driver: 'libvirt',
    uri: await h.simulatedHost('small', { cpus: 2, memoryMiB: 2048 }),
  });
});
afterAll(async () => {
  await h?.close();
});

async function keyCount(): Promise<number> {
  const [row] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM node_keys`;
  return row!.n;
}

async function domainNames(): Promise<string[]> {
  const host = await h.api.hosts.get({ name: 'small' });
  return (await h.worker.drivers.get(host).status()).domains.map((d) => d.name);
}

describe('a create that fails releases everything it took', () => {
  it.each([
    [
      'no host has room',
      'too-big',
      { vcpus: 1, memoryMiB: 4096 },
      /NoCapacity|no host can take this VM.*small: not enough memory/,
    ],
    [
      'the driver refuses the definition',
      'bad-define-1',
      { vcpus: 1, memoryMiB: 256 },
      /no such machine/,
    ],
    ['the domain will not boot', 'bad-start-1', { vcpus: 1, memoryMiB: 256 }, /cannot boot/],
  ])('when %s', async (_why, name, size, reason) => {
    const before = await keyCount();
    const { operation } = await h.api.vms.create({
      name,
      ...size,
      nics: [{ network: 'default', ip: '10.1.0.9' }],
    });
    const done = await settle(h, operation);
    expect(done.status).toBe('failed');
    expect(done.error?.message).toMatch(reason);
    await expect(h.api.vms.get({ name })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await keyCount()).toBe(before);
    expect(await domainNames()).not.toContain(name);
    expect((await h.api.hosts.get({ name: 'small' })).allocated).toEqual({
      vcpus: 0,
      memoryMiB: 0,
      diskGiB: 0,
    });

    // What the failure held is free again.
    const retry = await h.api.vms.create({
      name: `ok-${name}`,
      vcpus: 1,
      memoryMiB: 256,
      nics: [{ network: 'default', ip: '10.1.0.9' }],
    });
    expect(await settle(h, retry.operation)).toMatchObject({ status: 'completed' });
    const { operation: gone } = await h.api.vms.decommission({ name: `ok-${name}` });
    expect(await settle(h, gone)).toMatchObject({ status: 'completed' });
  });
});
