import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainSpec } from '../../drivers/driver.ts';
import { writeSimulatedHost } from '../../drivers/libvirt/simulated-host.ts';
import { constants as C } from '../../native/libvirt/index.ts';
import {
  driverFailure as failure,
  foreignDomainXml,
  SimulatedHosts,
  vmSpec as vm,
} from '../support/libvirt-hosts.ts';

let hosts: SimulatedHosts;
beforeAll(async () => {
  hosts = await SimulatedHosts.create();
});
afterAll(async () => {
  await hosts?.close();
});

describe('the domain life cycle', () => {
  it('defines, starts, reboots, stops and undefines, each one twice without harm', async () => {
    const h = await hosts.add();
    const spec = vm({ nics: [{ network: 'default', mac: '52:54:00:AB:00:01' }] });
    await h.driver.define(spec);
    await h.driver.define(spec);
    expect(await h.driver.info(spec.name)).toEqual({
      name: spec.name,
      state: 'stopped',
      vagothId: spec.id,
      vcpus: 2,
      memoryMiB: 1024,
      macs: ['52:54:00:ab:00:01'],
    });
    await h.driver.start(spec.name);
    await h.driver.start(spec.name);
    expect((await h.driver.info(spec.name))?.state).toBe('running');
    await h.driver.reboot(spec.name);
    expect((await h.driver.info(spec.name))?.state).toBe('running');
    await h.driver.stop(spec.name);
    await h.driver.stop(spec.name);
    expect((await h.driver.info(spec.name))?.state).toBe('stopped');
    await h.driver.undefine(spec);
    await h.driver.undefine(spec);
    expect(await h.driver.info(spec.name)).toBeNull();
    await h.driver.stop(spec.name);
  });

  it('undefines a running domain, powering it off first', async () => {
    const h = await hosts.add();
    const spec = vm();
    await h.driver.define(spec);
    await h.driver.start(spec.name);
    await h.driver.undefine(spec);
    expect((await h.driver.status()).domains).toEqual([]);
  });

  it('shuts a guest down gracefully; a stopped or missing one is already done', async () => {
    const h = await hosts.add();
    const spec = vm();
    await h.driver.define(spec);
    await h.driver.start(spec.name);
    await h.driver.shutdown(spec.name, { timeoutMs: 5000 });
    expect((await h.driver.info(spec.name))?.state).toBe('stopped');
    await h.driver.shutdown(spec.name, { timeoutMs: 5000 });
    await h.driver.shutdown('never-defined', { timeoutMs: 5000 });
    const bad = await failure(h.driver.shutdown(spec.name, { timeoutMs: -1 }));
    expect(bad.kind).toBe('rejected');
    expect(bad.message).toContain('timeoutMs');
  });

  it('says not-found for a domain it must act on that the host does not have', async () => {
    const h = await hosts.add();
    expect((await failure(h.driver.start('nope'))).kind).toBe('not-found');
    expect((await failure(h.driver.reboot('nope'))).kind).toBe('not-found');
    expect(await h.driver.info('nope')).toBeNull();
  });

  it("keeps libvirt's error number: rebooting a stopped domain is an invalid operation", async () => {
    const h = await hosts.add();
    const spec = vm();
    await h.driver.define(spec);
    const err = await failure(h.driver.reboot(spec.name));
    expect(err).toMatchObject({ kind: 'rejected', code: C.VIR_ERR_OPERATION_INVALID });
    expect(err.retryable).toBe(false);
  });

  const base = vm();
  it.each<[string, DomainSpec, string]>([
    ['a control character in the name', { ...base, name: 'web\u0001' }, 'name'],
    ['no vCPU', { ...base, definition: { ...base.definition, vcpus: 0 } }, 'definition.vcpus'],
    [
      'a broken MAC',
      { ...base, definition: { ...base.definition, nics: [{ network: 'n', mac: '52:54:00' }] } },
      'definition.nics[0].mac',
    ],
    ['an id that is no UUID', { ...base, id: 'web-1' }, 'id'],
  ])('refuses a definition with %s, naming the field', async (_what, spec, field) => {
    const h = await hosts.add();
    const err = await failure(h.driver.define(spec));
    expect(err.kind).toBe('rejected');
    expect(err.message).toContain(`${field}:`);
    expect((await h.driver.status()).domains).toEqual([]);
  });

  it('passes on what libvirt itself rejects, with its error number', async () => {
    const { uri } = await hosts.add();
    const driver = hosts.driver({ uri, domainType: 'no-such-type' });
    const err = await failure(driver.define(vm()));
    expect(err).toMatchObject({ kind: 'rejected', code: C.VIR_ERR_CONFIG_UNSUPPORTED });
  });

  it('refuses to redefine, undefine or deprovision a domain vagoth did not create', async () => {
    const h = await hosts.add();
    (await (await h.conn()).defineDomainXML(foreignDomainXml('theirs'))).free();
    const spec = { ...vm(), name: 'theirs' };
    expect((await failure(h.driver.define(spec))).kind).toBe('not-ours');
    expect((await failure(h.driver.undefine(spec))).kind).toBe('not-ours');
    expect((await failure(h.driver.deprovision({ ...spec, volumes: [] }))).kind).toBe('not-ours');
    expect(await h.driver.info('theirs')).toMatchObject({ name: 'theirs', vagothId: null });
  });
});

describe('host status', () => {
  it('reports the node file’s CPUs and memory, and what running domains leave free', async () => {
    const h = await hosts.add({ cpus: 6, memoryMiB: 12288 });
    expect(await h.driver.status()).toEqual({
      capacity: { vcpus: 6, memoryMiB: 12288 },
      freeMemoryMiB: 12288,
      load: null,
      domains: [],
    });
    const running = vm({ memoryMiB: 1024 });
    const stopped = vm({ memoryMiB: 2048, vcpus: 1 });
    await h.driver.define(running);
    await h.driver.define(stopped);
    await h.driver.start(running.name);
    const status = await h.driver.status();
    expect(status.freeMemoryMiB).toBe(12288 - 1024);
    const seen = status.domains.map((d) => [d.name, d.state, d.vcpus, d.memoryMiB, d.vagothId]);
    expect(seen.sort()).toEqual(
      [
        [running.name, 'running', 2, 1024, running.id],
        [stopped.name, 'stopped', 1, 2048, stopped.id],
      ].sort(),
    );
  });

  it('says unreachable for a host it cannot connect to, and tries again next time', async () => {
    const missing = hosts.driver({ uri: `test://${hosts.dir}/not-yet.xml` });
    const refused = hosts.driver({ uri: 'qemu+tcp://127.0.0.1:1/system' });
    for (const driver of [missing, refused]) {
      const err = await failure(driver.status());
      expect(err.kind).toBe('unreachable');
      expect(err.retryable).toBe(true);
      expect(typeof err.code).toBe('number');
    }
    await writeSimulatedHost(hosts.dir, 'not-yet', { cpus: 2, memoryMiB: 1024 });
    expect((await missing.status()).capacity).toEqual({ vcpus: 2, memoryMiB: 1024 });
  });

  it('reopens its connection once the connection was lost', async () => {
    const h = await hosts.add({ cpus: 3, memoryMiB: 3072 });
    await h.driver.status();
    await (await h.conn()).close();
    expect((await failure(h.driver.status())).kind).toBe('unreachable');
    expect((await h.driver.status()).capacity).toEqual({ vcpus: 3, memoryMiB: 3072 });
  });
});
