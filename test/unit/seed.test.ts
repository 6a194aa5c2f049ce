import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildSeedIso, seedFiles, type SeedInput } from '../../images/seed.ts';
import { findExecutable } from '../support/libvirtd.ts';

const run = promisify(execFile);
const skip =
  findExecutable('genisoimage') && findExecutable('isoinfo') ? null : 'genisoimage not installed';

const input = (over: Partial<SeedInput> = {}): SeedInput => ({
  vmId: '6f1c2e0a-8d7b-4c8e-9a51-0c1d2e3f4a5b',
  hostname: 'web-1',
  guest: { sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ user@x'] },
  nics: [
    {
      network: 'front',
      ip: '10.9.0.5',
      mac: '52:54:00:00:00:01',
      net: { cidr: '10.9.0.0/24', gateway: '10.9.0.1', dns: ['10.9.0.2', '10.9.0.3'] },
    },
    {
      network: 'back',
      ip: '10.8.0.7',
      mac: '52:54:00:00:00:02',
      net: { cidr: '10.8.0.0/16', gateway: '10.8.0.1', dns: [] },
    },
    { network: 'bridge:br0', mac: '52:54:00:00:00:03', net: null },
  ],
  ...over,
});

describe('a cloud-init NoCloud seed', () => {
  it('names the instance and host, lists the keys, and configures each NIC by its MAC', () => {
    const files = seedFiles(input());
    expect(JSON.parse(files['meta-data'])).toEqual({
      'instance-id': '6f1c2e0a-8d7b-4c8e-9a51-0c1d2e3f4a5b',
      'local-hostname': 'web-1',
      'public-keys': ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ user@x'],
    });
    expect(JSON.parse(files['network-config'])).toEqual({
      version: 2,
      ethernets: {
        nic0: {
          match: { macaddress: '52:54:00:00:00:01' },
          dhcp4: false,
          addresses: ['10.9.0.5/24'],
          routes: [{ to: 'default', via: '10.9.0.1' }],
          nameservers: { addresses: ['10.9.0.2', '10.9.0.3'] },
        },
        // One default route only: the second network's gateway is not one.
        nic1: {
          match: { macaddress: '52:54:00:00:00:02' },
          dhcp4: false,
          addresses: ['10.8.0.7/16'],
        },
        nic2: { match: { macaddress: '52:54:00:00:00:03' }, dhcp4: true },
      },
    });
    expect(files['user-data']).toBe('#cloud-config\n{}\n');
  });

  it('passes user-data as given, and no name or key can change the documents’ structure', () => {
    const hostile = 'x"\n  instance-id: other\n- evil: [';
    const files = seedFiles(
      input({
        hostname: hostile,
        guest: { sshAuthorizedKeys: [`ssh-rsa AAAA ${hostile}`], userData: '#!/bin/sh\necho hi\n' },
      }),
    );
    const meta = JSON.parse(files['meta-data']) as Record<string, unknown>;
    expect(meta['instance-id']).toBe('6f1c2e0a-8d7b-4c8e-9a51-0c1d2e3f4a5b');
    expect(meta['local-hostname']).toBe(hostile);
    expect(Object.keys(meta).sort()).toEqual(['instance-id', 'local-hostname', 'public-keys']);
    expect(files['user-data']).toBe('#!/bin/sh\necho hi\n');
  });

  it.skipIf(skip)('is an ISO 9660 image labelled cidata holding the three files', async () => {
    const files = seedFiles(
      input({ guest: { sshAuthorizedKeys: [], userData: 'é'.repeat(30_000) } }),
    );
    const iso = await buildSeedIso(files);
    const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-seed-test-'));
    try {
      const file = path.join(dir, 'seed.iso');
      await writeFile(file, iso);
      const { stdout: pvd } = await run('isoinfo', ['-d', '-i', file]);
      expect(pvd).toMatch(/Volume id: cidata/);
      for (const name of ['meta-data', 'network-config', 'user-data'] as const) {
        const { stdout } = await run('isoinfo', ['-J', '-i', file, '-x', `/${name}`], {
          maxBuffer: 1024 * 1024,
        });
        expect(stdout).toBe(files[name]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
