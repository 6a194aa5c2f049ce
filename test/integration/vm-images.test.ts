import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dirPoolDrivers,
  startDirPoolDaemon,
  type DirPoolDaemon,
} from '../support/dir-pool-daemon.ts';
import { dropHostImage, takeHostImage } from '../../registry/host-images.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { findExecutable } from '../support/libvirtd.ts';
import { refusal } from '../support/refusal.ts';
import { writeGeatsHost } from '../contract/geats-host.ts';
import { waitForConsole } from '../realvm/host.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
const missing = ['libvirtd', 'virsh', 'qemu-img', 'genisoimage', 'isoinfo'].filter(
  (p) => !findExecutable(p),
);
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 user@laptop';

/**
 * VMs made from imported images, through the API as a cloud layer calls it: on simulated hosts
 * (many VMs, one copy of the image per host) and on a libvirt host keeping real bytes (a
 * private libvirtd with a directory pool), where the copy, the overlay and the seed are read
 * back from the pool's files.
 */
describe.skipIf(skip)(skip ? `VMs from images (skipped: ${skip})` : 'VMs from images', () => {
  const pool = `vagoth-vi-${randomUUID().slice(0, 8)}`;
  let daemon: DirPoolDaemon;
  let daemonB: DirPoolDaemon;
  let h: Harness;
  let root: string;
  let allowed: string;
  let qcow2: string;

  const consoleDir = () => path.join(root, 'console');
  /** The test guest's kernel and initramfs (scripts/guest/build.sh; built once, then reused). */
  const guestDir = path.resolve(import.meta.dirname, '../../.tools/guest');

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vagoth-vm-images-'));
    // The daemons' qemu runs as another user: it writes the guests' consoles here.
    await mkdir(consoleDir(), { mode: 0o777 });
    await chmod(consoleDir(), 0o777);
    await chmod(root, 0o755);
    await run('bash', [
      path.resolve(import.meta.dirname, '../../scripts/guest/build.sh'),
      guestDir,
    ]);
    allowed = path.join(root, 'allowed');
    await mkdir(allowed);
    // A disk of 64 MiB that holds 3 MiB of random bytes, as qcow2: the image.
    const raw = path.join(root, 'disk.raw');
    await run('truncate', ['--size', String(64 * MiB), raw]);
    await writeFile(path.join(root, 'head'), randomBytes(3 * MiB));
    await run('dd', [`if=${path.join(root, 'head')}`, `of=${raw}`, 'conv=notrunc', 'status=none']);
    qcow2 = path.join(allowed, 'base.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);

    [daemon, daemonB] = await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)]);
    h = await startHarness({
      driverFactory: dirPoolDrivers(pool, { consoleLogDir: consoleDir() }),
      images: {
        store: path.join(root, 'store'),
        sources: { dirs: [allowed], urls: [] },
        maxBytes: GiB,
      },
    });
    await h.api.hosts.register({
      name: 'vi-real',
      driver: 'libvirt',
      uri: daemon.uri,
      diskGiB: 100,
    });
    await h.api.hosts.register({
      name: 'vi-real-b',
      driver: 'libvirt',
      uri: daemonB.uri,
      diskGiB: 100,
    });
    // A host without the pool: every copy to it fails at once.
    await h.api.hosts.register({
      name: 'vi-nopool',
      driver: 'libvirt',
      uri: await h.simulatedHost('vi-nopool'),
      diskGiB: 100,
    });
    await h.api.hosts.register({
      name: 'vi-sim',
      driver: 'libvirt',
      uri: await h.simulatedHost('vi-sim', {
        cpus: 64,
        memoryMiB: 64 * 1024,
        pools: [{ name: pool }],
      }),
      diskGiB: 1000,
    });
    const image = await h.api.images.create({ name: 'base', source: qcow2 });
    await h.temporal.workflow.getHandle(image.operation!.id, image.operation!.runId).result();
    expect(await h.api.images.get({ name: 'base' })).toMatchObject({ status: 'ready' });
  });
  afterAll(async () => {
    await h?.close();
    await daemon?.stop();
    await daemonB?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const create = (name: string, more: Record<string, unknown> = {}) =>
    h.api.vms.create({ name, vcpus: 1, memoryMiB: 64, ...more } as Parameters<
      Harness['api']['vms']['create']
    >[0]);

  it('refuses an unknown image (NOT_FOUND) and bad guest input (BAD_REQUEST) before claiming anything', async () => {
    const unknown = await refusal(
      create('vi-none', { image: 'no-such', nics: [{ network: 'default', ip: '10.77.0.40' }] }),
    );
    expect(unknown.code).toBe('NOT_FOUND');
    expect(unknown.message).toContain('no-such');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ image: 'base', diskGiB: 0.5 }, 'diskGiB'],
      [{ image: 'base', userData: 'x'.repeat(64 * 1024 + 1) }, 'userData'],
      [{ image: 'base', userData: 'é'.repeat(32 * 1024 + 1) }, 'userData'],
      [{ image: 'base', sshAuthorizedKeys: ['ssh-ed25519 AAAA\nroot:x:0:0'] }, 'sshAuthorizedKeys'],
      [{ image: 'base', sshAuthorizedKeys: ['not a key'] }, 'sshAuthorizedKeys'],
      [{ sshAuthorizedKeys: [KEY] }, 'sshAuthorizedKeys'],
      [{ userData: '#cloud-config' }, 'userData'],
      [{ image: 'base', disks: [{ sizeGiB: 0 }] }, 'disks'],
      [{ image: '../base' }, 'image'],
    ];
    for (const [input, field] of cases) {
      const err = await refusal(create('vi-bad', input));
      expect(err.code, JSON.stringify(input).slice(0, 80)).toBe('BAD_REQUEST');
      expect(err.message).toContain(field);
    }
    // Nothing was claimed: the name and the address are free.
    expect((await refusal(h.api.vms.get({ name: 'vi-none' }))).code).toBe('NOT_FOUND');
    expect((await refusal(h.api.vms.get({ name: 'vi-bad' }))).code).toBe('NOT_FOUND');
    const free = await create('vi-free', {
      diskGiB: 1,
      nics: [{ network: 'default', ip: '10.77.0.40' }],
      placement: { host: 'vi-sim' },
      onFailure: 'keep',
    });
    expect(await settle(h, free.operation)).toMatchObject({ status: 'completed' });
    await settle(h, (await h.api.vms.decommission({ name: 'vi-free' })).operation);
  });

  it('copies the image to a host once for twenty concurrent creates', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `vi-many-${i}`);
    const created = await Promise.all(
      names.map((name) => create(name, { image: 'base', placement: { host: 'vi-sim' } })),
    );
    const outcomes = await Promise.all(created.map((c) => settle(h, c.operation)));
    expect(outcomes.map((o) => o.status)).toEqual(names.map(() => 'completed'));
    const copies = await h.sql<{ copies: number; status: string }[]>`
      SELECT copies, status FROM host_images h JOIN nodes n ON n.id = h.host_id
      WHERE n.name = 'vi-sim'`;
    expect(copies).toEqual([{ copies: 1, status: 'ready' }]);
    const vm = await h.api.vms.get({ name: 'vi-many-0' });
    expect(vm.definition).toMatchObject({ image: { name: 'base' }, diskGiB: 1 });
    expect(vm.keys.filter((k) => k.startsWith('vol:'))).toHaveLength(2);
    await Promise.all(
      names.map(async (name) => settle(h, (await h.api.vms.decommission({ name })).operation)),
    );
  });

  it('answers first asks for an image on a host made at once: one copies, the others wait', async () => {
    const [image] = await h.sql<{ id: string }[]>`SELECT id FROM images WHERE name = 'base'`;
    const [host] = await h.sql<{ id: string }[]>`SELECT id FROM nodes WHERE name = 'vi-nopool'`;
    const where = { pool: 'default', volume: `vagoth-image-${image!.id}.qcow2` };
    for (let round = 0; round < 10; round++) {
      const turns = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          takeHostImage(h.sql, host!.id, image!.id, where, `copier-${round}-${i}`),
        ),
      );
      expect(turns.sort()).toEqual(['copy', ...Array(7).fill('wait')]);
      await dropHostImage(h.sql, host!.id, image!.id);
    }
  });

  it('fails every create at once when the copy to the host fails, none left waiting on it', async () => {
    const names = Array.from({ length: 5 }, (_, i) => `vi-nocopy-${i}`);
    const created = await Promise.all(
      names.map((name) => create(name, { image: 'base', placement: { host: 'vi-nopool' } })),
    );
    const outcomes = await Promise.all(created.map((c) => settle(h, c.operation)));
    for (const o of outcomes) {
      expect(o).toMatchObject({ status: 'failed', error: { type: 'DriverRejected' } });
      expect(o.error!.message).toContain('does not exist');
    }
    // Nothing left: no VM, no copy leased.
    expect((await h.api.vms.list()).filter((v) => v.name.startsWith('vi-nocopy'))).toEqual([]);
    const leases = await h.sql`
      SELECT 1 FROM host_images h JOIN nodes n ON n.id = h.host_id
      WHERE n.name = 'vi-nopool' AND h.copier IS NOT NULL`;
    expect(leases).toHaveLength(0);
  });

  it('never places a VM that needs a seed or a kernel boot on a geats host: geats gives neither', async () => {
    const geats = await writeGeatsHost(root, 'vi-geats', { memoryMiB: 64 * 1024 });
    await h.api.hosts.register({
      name: 'vi-geats',
      driver: 'geats',
      uri: geats.uri,
      vcpus: 64,
      diskGiB: 100,
    });
    // An image that boots a kernel another image holds.
    await writeFile(path.join(allowed, 'vi-geats-kernel'), randomBytes(64 * 1024));
    for (const input of [
      { name: 'vi-geats-kernel', source: path.join(allowed, 'vi-geats-kernel'), format: 'raw' },
      { name: 'vi-geats-booting', source: qcow2, boot: { kernel: 'vi-geats-kernel' } },
    ] as const) {
      const image = await h.api.images.create(input);
      await h.temporal.workflow.getHandle(image.operation!.id, image.operation!.runId).result();
    }
    const needs: Array<[string, Record<string, unknown>, string]> = [
      ['vi-geats-keys', { image: 'base', sshAuthorizedKeys: [KEY] }, 'cloud-init seed'],
      ['vi-geats-data', { image: 'base', userData: '#cloud-config\n' }, 'cloud-init seed'],
      ['vi-geats-boot', { image: 'vi-geats-booting' }, 'direct kernel boot'],
    ];
    for (const [name, more, feature] of needs) {
      const { operation } = await create(name, { placement: { host: 'vi-geats' }, ...more });
      const outcome = await settle(h, operation);
      expect(outcome).toMatchObject({ status: 'failed', error: { type: 'NoCapacity' } });
      expect(outcome.error!.message).toContain(`a geats host gives no ${feature}`);
      expect((await refusal(h.api.vms.get({ name }))).code).toBe('NOT_FOUND');
    }
    // Unpinned, the VM goes to a libvirt host, though the geats host has the most room.
    const { operation, vm } = await create('vi-geats-any', {
      image: 'base',
      userData: '#!/bin/sh\n',
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect((await h.api.vms.get({ name: vm.name })).host).not.toBe('vi-geats');
    await settle(h, (await h.api.vms.decommission({ name: vm.name })).operation);
    // geats was never asked for anything.
    expect(Object.keys((await geats.state()).vms)).toEqual([]);
    await h.api.hosts.remove({ name: 'vi-geats' });
    for (const name of ['vi-geats-booting', 'vi-geats-kernel']) await h.api.images.delete({ name });
  });

  it('moves a VM from an image to another host: the image copied there first, the guest’s disk whole', async () => {
    const { operation } = await create('vi-move', {
      image: 'base',
      diskGiB: 1,
      placement: { host: 'vi-real' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    await settle(h, (await h.api.vms.stop({ name: 'vi-move' })).operation);
    const vm = await h.api.vms.get({ name: 'vi-move' });
    const image = await h.api.images.get({ name: 'base' });
    const copyName = `vagoth-image-${image.id}.qcow2`;
    const disk0 = `vagoth-${vm.id}-disk0.img`;
    // The guest writes to its disk (here, through qemu-io on the stopped VM's overlay).
    await run('qemu-io', [
      '-f',
      'qcow2',
      '-c',
      'write -P 0x5a 1M 64k',
      path.join(daemon.poolDir, disk0),
    ]);
    /** What the guest sees: its disk through the chain the host's copy makes, as raw bytes. */
    const guestView = async (dir: string) => {
      const out = path.join(root, `view-${randomUUID()}.raw`);
      await run('qemu-img', [
        'convert',
        '-O',
        'raw',
        '--image-opts',
        `driver=qcow2,file.filename=${path.join(dir, disk0)},backing.driver=qcow2,backing.file.filename=${path.join(dir, copyName)}`,
        out,
      ]);
      try {
        return await sha256(out);
      } finally {
        await rm(out);
      }
    };
    const before = await guestView(daemon.poolDir);

    const moved = await h.api.vms.migrate({ name: 'vi-move', host: 'vi-real-b' });
    expect(await settle(h, moved.operation)).toMatchObject({ status: 'completed' });
    expect(await h.api.vms.get({ name: 'vi-move' })).toMatchObject({ host: 'vi-real-b' });
    expect(await sha256(path.join(daemonB.poolDir, copyName))).toBe(image.sha256);
    expect(await guestView(daemonB.poolDir)).toBe(before);
    // The target's domain is backed by the target's own copy.
    const { stdout: xml } = await run('virsh', ['-c', daemonB.uri, 'dumpxml', 'vi-move']);
    expect(xml).toContain(`<source file='${path.join(daemonB.poolDir, copyName)}'`);
    // The source keeps its copy of the image, and nothing of the VM's.
    expect(await readdir(daemon.poolDir)).toEqual([copyName]);
    const started = await h.api.vms.start({ name: 'vi-move' });
    expect(await settle(h, started.operation)).toMatchObject({ status: 'completed' });
    await settle(h, (await h.api.vms.decommission({ name: 'vi-move' })).operation);
    expect(await readdir(daemonB.poolDir)).toEqual([copyName]);
  });

  it('copies the image again to a host whose copy was removed by hand', async () => {
    const image = await h.api.images.get({ name: 'base' });
    const copyName = `vagoth-image-${image.id}.qcow2`;
    // A create first, so the host holds a copy, recorded ready.
    const first = await create('vi-heal-1', { image: 'base', placement: { host: 'vi-real' } });
    expect(await settle(h, first.operation)).toMatchObject({ status: 'completed' });
    await settle(h, (await h.api.vms.decommission({ name: 'vi-heal-1' })).operation);
    await run('virsh', ['-c', daemon.uri, 'vol-delete', '--pool', pool, copyName]);
    const { operation } = await create('vi-heal', {
      image: 'base',
      placement: { host: 'vi-real' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await sha256(path.join(daemon.poolDir, copyName))).toBe(image.sha256);
    await settle(h, (await h.api.vms.decommission({ name: 'vi-heal' })).operation);
  });

  it('boots a real guest from the kernel and initrd other images hold: it reads the image through its overlay, and its seed', async () => {
    const imported = async (name: string, source: string, more: Record<string, unknown> = {}) => {
      const image = await h.api.images.create({ name, source, ...more });
      await h.temporal.workflow.getHandle(image.operation!.id, image.operation!.runId).result();
      return h.api.images.get({ name });
    };
    await copyFile(path.join(guestDir, 'vmlinuz'), path.join(allowed, 'vmlinuz'));
    await copyFile(path.join(guestDir, 'initramfs.gz'), path.join(allowed, 'initrd'));
    const kernel = await imported('vi-kernel', path.join(allowed, 'vmlinuz'), { format: 'raw' });
    const initrd = await imported('vi-initrd', path.join(allowed, 'initrd'), { format: 'raw' });
    for (const [boot, field] of [
      [{ kernel: 'no-such' }, 'boot.kernel'],
      [{ kernel: 'vi-kernel', initrd: 'no-such' }, 'boot.initrd'],
      [{ kernel: 'vi-kernel', cmdline: 'a\u0000b' }, 'cmdline'],
      [{ kernel: 'vi-kernel', cmdline: 'quiet\ninit=/bin/sh' }, 'cmdline'],
    ] as const) {
      const err = await refusal(h.api.images.create({ name: 'vi-booted', source: qcow2, boot }));
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toContain(field);
    }
    const booted = await imported('vi-booted', qcow2, {
      boot: {
        kernel: 'vi-kernel',
        initrd: 'vi-initrd',
        cmdline: 'console=ttyS0 quiet vagoth.boot=vi',
      },
    });
    expect(booted).toMatchObject({
      status: 'ready',
      boot: {
        kernel: { id: kernel.id, name: 'vi-kernel' },
        initrd: { id: initrd.id, name: 'vi-initrd' },
        cmdline: 'console=ttyS0 quiet vagoth.boot=vi',
      },
    });
    // An image another boots from stays while it does.
    const held = await refusal(h.api.images.delete({ name: 'vi-kernel' }));
    expect(held.code).toBe('PRECONDITION_FAILED');
    expect(held.message).toContain('image vi-booted');

    const { operation } = await create('vi-boot-1', {
      image: 'vi-booted',
      memoryMiB: 256,
      sshAuthorizedKeys: [KEY],
      userData: '#!/bin/sh\necho "user-data ran on $(hostname)"\n',
      placement: { host: 'vi-real' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const copyOf = (id: string) => path.join(daemon.poolDir, `vagoth-image-${id}.raw`);
    expect(await sha256(copyOf(kernel.id))).toBe(kernel.sha256);
    expect(await sha256(copyOf(initrd.id))).toBe(initrd.sha256);
    const { stdout: xml } = await run('virsh', ['-c', daemon.uri, 'dumpxml', 'vi-boot-1']);
    expect(xml).toContain(`<kernel>${copyOf(kernel.id)}</kernel>`);
    expect(xml).toContain(`<initrd>${copyOf(initrd.id)}</initrd>`);
    expect(xml).toContain('<cmdline>console=ttyS0 quiet vagoth.boot=vi</cmdline>');
    // The guest boots that kernel, and reads the image's bytes through its overlay.
    const vm = await h.api.vms.get({ name: 'vi-boot-1' });
    const log = path.join(consoleDir(), `${vm.id}.log`);
    await waitForConsole(log, /VAGOTH-GUEST-UP boot=vi/);
    const disk = await waitForConsole(log, /VAGOTH-DISK name=vda bytes=(\d+) head=([0-9a-f]+)/);
    expect(Number(disk[1])).toBe(GiB);
    expect(disk[2]).toBe((await readFile(path.join(root, 'head'))).subarray(0, 64).toString('hex'));
    // It finds its seed, takes its name from it and runs its user-data.
    await waitForConsole(
      log,
      new RegExp(`VAGOTH-SEED hostname=vi-boot-1 instance=${vm.id} keys=1`),
    );
    await waitForConsole(log, /VAGOTH-USER-DATA user-data ran on vi-boot-1/);

    await settle(h, (await h.api.vms.decommission({ name: 'vi-boot-1' })).operation);
    for (const name of ['vi-booted', 'vi-kernel', 'vi-initrd']) {
      expect(await h.api.images.delete({ name })).toEqual({ name, deleted: true });
    }
    expect((await readdir(daemon.poolDir)).filter((f) => f.endsWith('.raw'))).toEqual([]);
  });

  it('boots a VM from the image on a real pool: a checked copy, a qcow2 overlay, extra disks, the seed; wipes them all, then the image goes', async () => {
    const userData = '#cloud-config\nruncmd:\n  - echo vagoth-was-here\n';
    const { operation } = await create('vi-real-1', {
      image: 'base',
      diskGiB: 2,
      disks: [{ sizeGiB: 1 }],
      sshAuthorizedKeys: [KEY],
      userData,
      placement: { host: 'vi-real' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    const vm = await h.api.vms.get({ name: 'vi-real-1' });
    expect(vm.state).toBe('running');
    const image = await h.api.images.get({ name: 'base' });

    // The host's copy: the image's bytes, whole.
    const copy = path.join(daemon.poolDir, `vagoth-image-${image.id}.qcow2`);
    expect(await sha256(copy)).toBe(image.sha256);
    // The root: an overlay on that copy, as large as asked; the extra disk blank.
    const disk0 = path.join(daemon.poolDir, `vagoth-${vm.id}-disk0.img`);
    const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', disk0]);
    const info = JSON.parse(stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 2 * GiB });
    expect(info['backing-filename']).toBe(copy);
    expect((await stat(path.join(daemon.poolDir, `vagoth-${vm.id}-disk1.img`))).size).toBe(GiB);
    // The seed: an ISO labelled cidata with the VM's id, name, keys and user-data.
    const seed = path.join(daemon.poolDir, `vagoth-${vm.id}-seed.iso`);
    const iso = (file: string) =>
      run('isoinfo', ['-J', '-i', seed, '-x', `/${file}`]).then((r) => r.stdout);
    expect((await run('isoinfo', ['-d', '-i', seed])).stdout).toMatch(/Volume id: cidata/);
    expect(JSON.parse(await iso('meta-data'))).toEqual({
      'instance-id': vm.id,
      'local-hostname': 'vi-real-1',
      'public-keys': [KEY],
    });
    expect(await iso('user-data')).toBe(userData);
    expect(JSON.parse(await iso('network-config'))).toEqual({ version: 2, ethernets: {} });
    // The domain: the root an overlay whose backing the XML names, the seed a read-only CD.
    const { stdout: xml } = await run('virsh', ['-c', daemon.uri, 'dumpxml', 'vi-real-1']);
    expect(xml).toContain(`<source file='${copy}'`);
    expect(xml).toMatch(
      /seed\.iso'[^>]*\/>[\s\S]*?<target dev='vd[a-z]' bus='virtio'\/>\s*<readonly\/>/,
    );

    // Reprovision: the disks built again from the image (what the guest wrote is gone), a
    // fresh seed saying the same, the VM's name and keys as they were.
    await settle(h, (await h.api.vms.stop({ name: 'vi-real-1' })).operation);
    const marked = async (pattern: number) => {
      const out = await run('qemu-io', [
        '-U',
        '-r',
        '-f',
        'qcow2',
        '-c',
        `read -P ${pattern} 1M 64k`,
        disk0,
      ]).then(
        (r) => r.stdout + r.stderr,
        (err: { stdout?: string; stderr?: string }) => `${err.stdout}${err.stderr}`,
      );
      return /read 65536\/65536 bytes/.test(out) && !/verification failed/i.test(out);
    };
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 64k', disk0]);
    expect(await marked(0x5a)).toBe(true);
    const again = await h.api.vms.reprovision({ name: 'vi-real-1' });
    expect(await settle(h, again.operation)).toMatchObject({ status: 'completed' });
    expect(await h.api.vms.get({ name: 'vi-real-1' })).toMatchObject({
      id: vm.id,
      state: 'running',
      keys: vm.keys,
    });
    expect(await marked(0x5a)).toBe(false);
    expect(
      JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', disk0])).stdout),
    ).toMatchObject({
      'backing-filename': copy,
      'virtual-size': 2 * GiB,
    });
    expect(await iso('user-data')).toBe(userData);
    expect(JSON.parse(await iso('meta-data'))).toMatchObject({ 'instance-id': vm.id });

    // In use: the image stays.
    const refused = await refusal(h.api.images.delete({ name: 'base' }));
    expect(refused.code).toBe('PRECONDITION_FAILED');
    expect(refused.message).toContain('vi-real-1');

    await settle(h, (await h.api.vms.decommission({ name: 'vi-real-1' })).operation);
    const wipes = await h.api.vms.wipes({ id: vm.id });
    // Every volume twice: by the reprovision, then by the decommission.
    const volumes = [
      `vagoth-${vm.id}-disk0.img`,
      `vagoth-${vm.id}-disk1.img`,
      `vagoth-${vm.id}-seed.iso`,
    ];
    expect(wipes.map((w) => `${w.vmOperation}:${w.volume}`).sort()).toEqual(
      [
        ...volumes.map((v) => `reprovision:${v}`),
        ...volumes.map((v) => `decommission:${v}`),
      ].sort(),
    );
    for (const w of wipes) expect(w.check).toMatchObject({ zero: true, nonZeroAt: null });
    // The copy outlives the VM (the next VM of the image on the host uses it) ...
    expect(await readdir(daemon.poolDir)).toEqual([path.basename(copy)]);
    // ... until the image is deleted, from every host.
    expect(await h.api.images.delete({ name: 'base' })).toEqual({ name: 'base', deleted: true });
    expect(await readdir(daemon.poolDir)).toEqual([]);
    expect(await readdir(daemonB.poolDir)).toEqual([]);
    expect((await refusal(h.api.images.get({ name: 'base' }))).code).toBe('NOT_FOUND');
  });
});
