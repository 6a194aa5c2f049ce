import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DriverError, type DriverErrorKind } from '../../drivers/index.ts';
import { createGeatsDriver, type GeatsDriver } from '../../drivers/geats/index.ts';
import { vmSpec } from '../contract/driver-contract.ts';
import { testImage } from '../support/libvirt-hosts.ts';
import { writeGeatsHost, type GeatsTestHost } from '../contract/geats-host.ts';
import {
  geatsTestOptions,
  startGeatsSshHost,
  type GeatsSshHost,
} from '../contract/geats-ssh-host.ts';
import { createDriverFactory, DEFAULT_DRIVERS_OPTIONS } from '../../drivers/index.ts';
import { TEST_HOST_URIS } from '../support/host-uris.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';
import { generateSshKey } from '../support/ssh-host.ts';
import { recordedVolumes } from '../../registry/vm-volumes.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'vagoth-geats-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let seq = 0;
const hostName = () => `hv-${++seq}`;

async function failure(promise: Promise<unknown>, kind: DriverErrorKind): Promise<DriverError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DriverError);
  expect((err as DriverError).kind, (err as Error).message).toBe(kind);
  return err as DriverError;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('geats driver, local agent', () => {
  let host: GeatsTestHost;
  let driver: GeatsDriver;
  beforeEach(async () => {
    host = await writeGeatsHost(root, hostName(), { memoryMiB: 8192, loadAvg: [1.5, 1, 0.5] });
    driver = createGeatsDriver(host.uri, geatsTestOptions({ timeoutMs: 2_000 }));
  });
  afterEach(() => driver.close());

  it('refuses a VM whose guest is to be told keys or user-data: geats reads no seed', async () => {
    const spec = vmSpec('web-seed', {
      image: testImage(),
      guest: { sshAuthorizedKeys: ['ssh-ed25519 AAAA x'] },
    });
    await expect(driver.provision(spec)).rejects.toMatchObject({ kind: 'unsupported' });
    expect((await host.state()).vms['web-seed']).toBeUndefined();
  });

  it('hands geats its own definition: vm_type, NICs, storage, template and vagoth id', async () => {
    const spec = vmSpec('web-1', { image: testImage() });
    const [m0, m1] = spec.definition.nics.map((n) => n.mac);
    await driver.provision(spec);
    const state = await host.state();
    expect(state.vms['web-1']?.definition).toMatchObject({
      name: 'web-1',
      vm_type: 'kvm',
      vagoth_id: spec.id,
      vcpus: 2,
      ram: 512,
      template: 'debian-12',
      network: [
        { name: 'eth0', hwaddr: m0, ipaddr: '10.0.0.5', bridge: 'default' },
        { name: 'eth1', hwaddr: m1, bridge: 'default' },
      ],
      storage: [{ name: `root-${spec.id}`, type: 'local', size_gib: 1 }],
    });
    expect(state.volumes[`web-1-root-${spec.id}`]).toEqual({ vm: 'web-1', template: 'debian-12' });
  });

  it("names storage for the VM's id: a later VM of the same name never gets the earlier one's", async () => {
    const first = vmSpec('web-1');
    const [old] = await driver.provision(first);
    await host.writeToVolume(old!.name, 'first tenant');
    // Undefine keeps storage (as geats does); a new web-1 must still start on its own volume.
    await driver.undefine(first);
    const second = vmSpec('web-1');
    const [fresh] = await driver.provision(second);
    expect(fresh!.name).not.toBe(old!.name);
    expect((await host.state()).volumes[fresh!.name]).toEqual({ vm: 'web-1', template: null });
  });

  it('deprovision removes the storage of a VM already undefined, under either spelling', async () => {
    const spec = vmSpec('web-1');
    const volumes = await driver.provision(spec);
    await driver.start('web-1');
    await driver.undefine(spec);
    expect(Object.keys((await host.state()).volumes)).toEqual(volumes.map((v) => v.name));
    await driver.deprovision({ ...spec, volumes });
    await driver.deprovision({ ...spec, volumes });
    expect(await host.state()).toMatchObject({ vms: {}, volumes: {} });
    // A VM created before volumes carried its id has `<name>-root` recorded: still its own.
    const legacy = { ...vmSpec('db-1'), volumes: [{ pool: 'geats', name: 'db-1-root' }] };
    await driver.define(legacy);
    expect(Object.keys((await host.state()).volumes)).toEqual(['db-1-root']);
    await driver.undefine(legacy);
    await driver.deprovision(legacy);
    expect(await host.state()).toMatchObject({ vms: {}, volumes: {} });
  });

  it('deprovision fails, rather than succeed, when geats keeps the VM', async () => {
    const spec = vmSpec('web-1');
    const volumes = await driver.provision(spec);
    await host.setFaults([{ action: 'deprovision', mode: 'ignore' }]);
    const err = await failure(driver.deprovision({ ...spec, volumes }), 'rejected');
    expect(err.code).toBe('StillDefined');
  });

  it("reads geats's kB as MiB, its load, and what running VMs take", async () => {
    const before = await driver.status();
    expect(before.capacity).toEqual({ vcpus: 0, memoryMiB: 8192 });
    expect(before.load).toEqual([1.5, 1, 0.5]);
    await driver.define(vmSpec('big', { memoryMiB: 1024 }));
    await driver.start('big');
    const after = await driver.status();
    expect(before.freeMemoryMiB - after.freeMemoryMiB).toBe(1024);
  });

  it('finds its VMs again from a new driver: the host keeps them between runs', async () => {
    const spec = vmSpec('web-1');
    await driver.define(spec);
    await driver.start('web-1');
    const again = createGeatsDriver(host.uri, geatsTestOptions());
    expect(await again.info('web-1')).toMatchObject({ vagothId: spec.id, state: 'running' });
  });

  it('maps geats errorcodes to kinds and keeps the code', async () => {
    const spec = vmSpec('web-1');
    const xen = createGeatsDriver(host.uri, geatsTestOptions({ vmType: 'xen' }));
    const bad = await failure(xen.define(spec), 'rejected');
    expect(bad.code).toBe('UnsupportedVMType');
    expect(bad.message).toContain('Unsupported vm_type: xen');
    expect(await driver.info('web-1')).toBeNull();
    const cases: [string, DriverErrorKind, boolean][] = [
      ['FailedToAcquireLockException', 'timeout', true],
      ['NotImplementedError', 'unsupported', false],
      ['VMLockedException', 'rejected', false],
      ['SomethingGeatsWillSayOneDay', 'rejected', false],
    ];
    for (const [errorcode, kind, retryable] of cases) {
      await host.setFaults([{ action: 'status', mode: 'error', errorcode, message: 'no' }]);
      const err = await failure(driver.status(), kind);
      expect([err.code, err.retryable]).toEqual([errorcode, retryable]);
    }
  });

  it('treats a crash, garbage, or an answer of the wrong shape as errors that say what came', async () => {
    // What the agent printed is kept for the worker's log (detail), not told to callers.
    await host.setFaults([{ action: 'status', mode: 'crash', exitCode: 3 }]);
    const crashed = await failure(driver.status(), 'rejected');
    expect(crashed.code).toBe('AgentCrashed');
    expect(crashed.message).toMatch(/geats agent exited with status 3$/);
    expect(crashed.detail).toContain('geats crashed');
    await host.setFaults([{ action: 'status', mode: 'garbage' }]);
    const garbage = await failure(driver.status(), 'rejected');
    expect([garbage.code, garbage.message, garbage.detail]).toEqual([
      'BadAnswer',
      expect.stringMatching(/the geats agent's answer is not a geats answer$/),
      expect.stringContaining('<html>'),
    ]);
    const empty = { success: true, data: { vms: {}, status: {} } };
    await host.setFaults([{ action: 'status', mode: 'answer', answer: empty, times: 1 }]);
    const shape = await failure(driver.status(), 'rejected');
    expect([shape.code, shape.message]).toEqual([
      'BadAnswer',
      expect.stringContaining('mem_total'),
    ]);
    expect((await driver.status()).capacity.memoryMiB).toBe(8192);
  });

  it('kills an agent that does not answer, and the next call works', async () => {
    await host.setFaults([{ action: 'status', mode: 'hang', times: 1 }]);
    const err = await failure(driver.status(), 'timeout');
    expect(err.retryable).toBe(true);
    const [pid] = await host.hungAgents();
    expect(pid).toBeDefined();
    expect(alive(pid!)).toBe(false);
    expect((await driver.status()).capacity.memoryMiB).toBe(8192);
  });

  it('kills the agent when the caller gives up on a long run', async () => {
    await host.setFaults([{ action: 'provision', mode: 'hang', times: 1 }]);
    const abort = new AbortController();
    const provision = driver.provision(vmSpec('web-1'), { signal: abort.signal });
    await vi.waitFor(async () => expect(await host.hungAgents()).toHaveLength(1));
    abort.abort();
    const err = await failure(provision, 'timeout');
    expect(err.message).toContain('aborted');
    const [pid] = await host.hungAgents();
    expect(alive(pid!)).toBe(false);
  });

  it('shutdown waits for the guest; a guest that ignores it is a timeout, or forced off', async () => {
    await driver.define(vmSpec('web-1'));
    await driver.start('web-1');
    await host.setFaults([{ action: 'shutdown', mode: 'ignore' }]);
    await failure(driver.shutdown('web-1', { timeoutMs: 300 }), 'timeout');
    expect((await driver.info('web-1'))?.state).toBe('running');
    await driver.shutdown('web-1', { timeoutMs: 300, force: true });
    expect((await driver.info('web-1'))?.state).toBe('stopped');
  });

  it('sees a VM it did not create as such, and will not take its name', async () => {
    await host.defineForeign('theirs');
    expect(await driver.info('theirs')).toMatchObject({ vagothId: null, state: 'running' });
    await failure(driver.define(vmSpec('theirs')), 'not-ours');
    expect((await host.state()).vms.theirs?.definition).not.toHaveProperty('vagoth_id');
  });

  it('migrates with its disk, cold unless the agent says live, never to another driver, never live-only', async () => {
    const live = await writeGeatsHost(root, hostName(), { liveMigration: true });
    const spec = vmSpec('web-1');
    const [volume] = await driver.provision(spec);
    await host.writeToVolume(volume!.name, 'kept');
    const to = (h: GeatsTestHost, name = h.name, kind: 'geats' | 'libvirt' = 'geats') => ({
      name,
      driver: kind,
      uri: h.uri,
    });
    await failure(driver.migrate(spec, to(live, live.name, 'libvirt')), 'unsupported');
    await failure(driver.migrate(spec, to(live), { liveOnly: true }), 'unsupported');
    await failure(driver.migrate(spec, to(live, 'nowhere')), 'rejected');
    expect(await driver.info('web-1')).not.toBeNull();
    // As a move begun before migrateMovesStorage did, the target is provisioned first: a blank
    // disk geats's move replaces.
    const there = createGeatsDriver(live.uri, geatsTestOptions());
    await there.provision(spec);
    expect(await driver.migrate(spec, to(live))).toEqual({ live: false });
    expect((await live.state()).volumes).toEqual({
      [volume!.name]: { vm: 'web-1', template: null, data: 'kept' },
    });
    expect(await host.state()).toMatchObject({ vms: {}, volumes: {} });
    // A retry whose answer was lost finds the VM moved; deprovision on the source takes nothing.
    expect(await driver.migrate(spec, to(live))).toEqual({ live: false });
    await driver.deprovision({ ...spec, volumes: [volume!] });
    expect((await live.state()).volumes[volume!.name]?.data).toBe('kept');
    expect(await there.migrate(spec, to(host))).toEqual({ live: true });
    expect((await host.state()).vms['web-1']?.definition.vagoth_id).toBe(spec.id);
  });

  it('refuses to move a VM whose geats cannot migrate, before anything moves', async () => {
    const fixed = await writeGeatsHost(root, hostName(), { migration: false });
    const d = createGeatsDriver(fixed.uri, geatsTestOptions());
    const spec = vmSpec('web-1');
    const [volume] = await d.provision(spec);
    await d.start('web-1');
    await fixed.writeToVolume(volume!.name, 'kept');
    await driver.provision(spec); // the target, as a move begun before migrateMovesStorage made it
    const target = { name: host.name, driver: 'geats' as const, uri: host.uri };
    const err = await failure(d.migrate(spec, target), 'unsupported');
    expect(err.code).toBe('NotImplementedError');
    expect(await d.info('web-1')).toMatchObject({ state: 'running', vagothId: spec.id });
    expect((await fixed.state()).volumes[volume!.name]?.data).toBe('kept');
    expect(await host.state()).toMatchObject({ vms: {}, volumes: {} });
  });
});

describe('geats driver over SSH', () => {
  let h: GeatsSshHost;
  let driver: GeatsDriver;
  beforeEach(async () => {
    h = await startGeatsSshHost(root, hostName());
    driver = createGeatsDriver(h.uri, geatsTestOptions({ timeoutMs: 2_000 }, h.ssh));
  });
  afterEach(async () => {
    await driver.close();
    await h.sshd.close();
  });

  it('runs a whole life cycle on one connection', async () => {
    const spec = vmSpec('web-1');
    const volumes = await driver.provision(spec);
    await driver.define({ ...spec, volumes });
    await driver.start('web-1');
    expect(await driver.info('web-1')).toMatchObject({ state: 'running', vagothId: spec.id });
    await driver.stop('web-1');
    await driver.deprovision({ ...spec, volumes });
    expect(await driver.info('web-1')).toBeNull();
    expect(await h.geats.state()).toMatchObject({ vms: {}, volumes: {} });
    expect(h.sshd.logins()).toBe(1);
  });

  it.each([
    ['a host whose key is not the known one', 'HOST_KEY_MISMATCH', 'refusing to connect'],
    ['a host known_hosts does not list', 'HOST_KEY_UNKNOWN', 'is not in'],
  ])('refuses %s, and runs nothing there', async (_what, code, says) => {
    const other = generateSshKey().publicKey.split(' ').slice(0, 2).join(' ');
    const line = code === 'HOST_KEY_MISMATCH' ? `[127.0.0.1]:${h.sshd.port} ${other}\n` : '';
    await writeFile(h.knownHostsFile, line);
    const err = await failure(driver.status(), 'rejected');
    expect([err.code, err.retryable]).toEqual([code, false]);
    expect(err.message).toContain(says);
    expect(err.message).toContain('SHA256:');
    expect(h.sshd.logins()).toBe(0);
    expect(await h.geats.calls()).toEqual([]);
  });

  it('says so when the host refuses our key', async () => {
    await writeFile(h.keyFile, generateSshKey().privateKey);
    const err = await failure(driver.status(), 'rejected');
    expect(err.code).toBe('AUTH_FAILED');
  });

  it('kills a hung agent on the host, and the connection goes on', async () => {
    await h.geats.setFaults([{ action: 'status', mode: 'hang', times: 1 }]);
    await failure(driver.status(), 'timeout');
    const [pid] = await h.geats.hungAgents();
    await vi.waitFor(() => expect(alive(pid!)).toBe(false), { timeout: 10_000 });
    expect(h.sshd.runningAgents()).toEqual([]);
    expect((await driver.status()).capacity.memoryMiB).toBe(16384);
    expect(h.sshd.logins()).toBe(1);
  });

  it('never starts a second agent for a VM while one the host would not kill may still run', async () => {
    // An sshd that ignores signal requests and lets a command outlive its channel (OpenSSH < 7.9).
    const deaf = await startGeatsSshHost(root, hostName(), { ignoreSignals: true });
    const options = geatsTestOptions({ timeoutMs: 1_500 }, { ...deaf.ssh, killGraceMs: 500 });
    const d = createGeatsDriver(deaf.uri, options);
    try {
      await deaf.geats.setFaults([{ action: 'define', mode: 'hang', times: 1 }]);
      const spec = vmSpec('web-1');
      const stuck = await failure(d.define(spec), 'timeout');
      expect(stuck.code).toBe('AgentNotKilled');
      const [pid] = await deaf.geats.hungAgents();
      expect(alive(pid!)).toBe(true);
      // The retry is refused before anything runs; the host's other VMs are not held up.
      const again = await failure(d.define(spec), 'timeout');
      expect([again.code, again.retryable]).toEqual(['AgentStillRunning', true]);
      await d.define(vmSpec('web-2'));
      const runs = (await deaf.geats.calls()).filter((c) => c.vm === 'web-1');
      expect(runs.map((c) => c.action)).toEqual(['info', 'define']);
      // Once the host reports the first agent ended, the retry goes through.
      process.kill(pid!, 'SIGKILL');
      await vi.waitFor(() => expect(deaf.sshd.runningAgents()).toEqual([]));
      await vi.waitFor(() => d.define(spec), { timeout: 5_000 });
      expect((await deaf.geats.state()).vms['web-1']?.definition.vagoth_id).toBe(spec.id);
    } finally {
      await d.close();
      await deaf.sshd.close();
    }
  });

  it('reopens a dropped connection', async () => {
    await driver.status();
    h.sshd.dropConnections();
    expect((await driver.status()).domains).toEqual([]);
    expect(h.sshd.logins()).toBe(2);
  });

  it('is unreachable, and may be retried, when nothing listens', async () => {
    await h.sshd.close();
    const err = await failure(driver.status(), 'unreachable');
    expect(err.retryable).toBe(true);
  });
});

describe('geats hosts in vagoth', () => {
  let h: Harness;
  let remote: GeatsSshHost;
  beforeAll(async () => {
    remote = await startGeatsSshHost(root, 'geats-ssh', { memoryMiB: 2048 });
    // The worker's drivers as workers/compose.ts builds them, with this host's SSH files.
    h = await startHarness({
      driverFactory: createDriverFactory({
        ...DEFAULT_DRIVERS_OPTIONS,
        hostUris: TEST_HOST_URIS,
        geats: geatsTestOptions({}, remote.ssh),
      }),
    });
  });
  afterAll(async () => {
    await h?.close();
    await remote?.sshd.close();
  });

  let local: GeatsTestHost;
  it('registers with the memory the agent reports and the vCPUs declared, locally or over SSH', async () => {
    local = await writeGeatsHost(root, 'geats-local', { memoryMiB: 4096 });
    const register = (name: string, uri: string, vcpus: number) =>
      h.api.hosts.register({ name, driver: 'geats', uri, vcpus, diskGiB: 20 });
    expect(await register('geats-local', local.uri, 6)).toMatchObject({
      driver: 'geats',
      uri: local.uri,
      capacity: { vcpus: 6, memoryMiB: 4096 },
    });
    expect(await register('geats-ssh', remote.uri, 2)).toMatchObject({
      capacity: { vcpus: 2, memoryMiB: 2048 },
    });
  });

  it('refuses a geats host without vCPUs, or with a relative agent path, naming the field', async () => {
    const missing = await refusal(
      h.api.hosts.register({ name: 'g', driver: 'geats', uri: 'geats:///usr/bin/geats-agent' }),
    );
    expect(missing.code).toBe('BAD_REQUEST');
    expect(missing.message).toContain('vcpus');
    const relative = await refusal(
      h.api.hosts.register({ name: 'g', driver: 'geats', uri: 'geats://bin/agent', vcpus: 2 }),
    );
    expect(relative.message).toContain('geats:///absolute/path');
    await expect(h.api.hosts.get({ name: 'g' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('runs a VM vagoth creates there, and removes it on decommission', async () => {
    const { vm, operation } = await h.api.vms.create({
      name: 'on-geats',
      vcpus: 1,
      memoryMiB: 512,
      nics: [{ network: 'default', ip: '10.0.0.9' }],
      placement: { host: 'geats-ssh' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const held = (await remote.geats.state()).vms['on-geats'];
    expect(held?.state[0]).toBe('running');
    expect(held?.definition).toMatchObject({ vagoth_id: vm.id, ram: 512 });
    const { operation: teardown } = await h.api.vms.decommission({ name: 'on-geats' });
    expect(await settle(h, teardown)).toMatchObject({ status: 'completed' });
    expect((await remote.geats.state()).vms).toEqual({});
  });

  it('a VM decommissioned and created again under its name starts on a fresh volume, and the host keeps nothing of the old one', async () => {
    const create = async () => {
      const { vm, operation } = await h.api.vms.create({
        name: 'reused',
        vcpus: 1,
        memoryMiB: 256,
        diskGiB: 1,
        placement: { host: 'geats-ssh' },
      });
      const done = await settle(h, operation);
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'completed' });
      const { keys } = await h.api.vms.get({ name: 'reused' });
      const volumes = recordedVolumes(keys)
        .filter((v) => v.pool === 'geats')
        .map((v) => v.name);
      expect(volumes).toHaveLength(1);
      return { id: vm.id, volume: volumes[0]! };
    };
    const first = await create();
    await remote.geats.writeToVolume(first.volume, 'the first tenant');
    const { operation } = await h.api.vms.decommission({ name: 'reused' });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await remote.geats.state()).toMatchObject({ vms: {}, volumes: {} });
    const second = await create();
    expect(second.id).not.toBe(first.id);
    expect(second.volume).not.toBe(first.volume);
    expect((await remote.geats.state()).volumes).toEqual({
      [second.volume]: { vm: 'reused', template: null },
    });
    const { operation: teardown } = await h.api.vms.decommission({ name: 'reused' });
    expect(await settle(h, teardown)).toMatchObject({ status: 'completed' });
  });

  it("a create undone after its disk was made leaves the host none of the VM's storage", async () => {
    await remote.geats.setFaults([
      { action: 'start', vm: 'undone', mode: 'error', errorcode: 'VMException' },
    ]);
    const { operation } = await h.api.vms.create({
      name: 'undone',
      vcpus: 1,
      memoryMiB: 256,
      diskGiB: 1,
      placement: { host: 'geats-ssh' },
    });
    const done = await settle(h, operation);
    // Failed at boot: after its storage was provisioned and the VM defined.
    expect(done).toMatchObject({
      status: 'failed',
      error: { message: expect.stringContaining('VMException') },
    });
    expect(
      (await remote.geats.calls()).filter((c) => c.vm === 'undone').map((c) => c.action),
    ).toEqual(expect.arrayContaining(['provision', 'start', 'undefine', 'deprovision']));
    await remote.geats.setFaults([]);
    expect(await remote.geats.state()).toMatchObject({ vms: {}, volumes: {} });
  });

  const createOn = async (name: string, host: string) => {
    const { vm, operation } = await h.api.vms.create({
      name,
      vcpus: 1,
      memoryMiB: 256,
      diskGiB: 1,
      placement: { host },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const { keys } = await h.api.vms.get({ name });
    return { id: vm.id, volume: recordedVolumes(keys).find((v) => v.pool === 'geats')!.name };
  };

  it('moves a VM between geats hosts with its disk, and leaves the source nothing', async () => {
    const { id, volume } = await createOn('mover', 'geats-ssh');
    await remote.geats.writeToVolume(volume, 'moves with it');
    const { operation } = await h.api.vms.migrate({ name: 'mover', host: 'geats-local' });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await h.api.vms.get({ name: 'mover' })).toMatchObject({
      host: 'geats-local',
      state: 'running',
    });
    const there = await local.state();
    expect(there.vms.mover?.definition.vagoth_id).toBe(id);
    expect(there.volumes[volume]?.data).toBe('moves with it');
    const source = await remote.geats.state();
    expect([source.vms.mover, source.volumes[volume]]).toEqual([undefined, undefined]);
  });

  it('refuses to move a VM whose geats cannot migrate, and it stays where it was with its disk', async () => {
    const fixed = await writeGeatsHost(root, 'geats-fixed', { migration: false });
    await h.api.hosts.register({
      name: 'geats-fixed',
      driver: 'geats',
      uri: fixed.uri,
      vcpus: 2,
      diskGiB: 20,
    });
    const { volume } = await createOn('rooted', 'geats-fixed');
    await fixed.writeToVolume(volume, 'stays');
    const { operation } = await h.api.vms.migrate({ name: 'rooted', host: 'geats-local' });
    expect(await settle(h, operation)).toMatchObject({
      status: 'failed',
      error: { message: expect.stringContaining('NotImplementedError') },
    });
    expect(await h.api.vms.get({ name: 'rooted' })).toMatchObject({
      host: 'geats-fixed',
      state: 'running',
    });
    expect((await fixed.state()).volumes[volume]?.data).toBe('stays');
    expect(Object.keys((await local.state()).vms)).not.toContain('rooted');
    expect(Object.keys((await local.state()).volumes)).not.toContain(volume);
  });
});
