import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import { runVagoth } from '../support/vagoth-cli.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ http: true });
});
afterAll(async () => {
  await h?.close();
});

/** Runs the `vagoth` command against the test's API; resolves even when it fails. */
async function vagoth(...args: string[]) {
  return vagothAs({ VAGOTH_TOKEN: h.token }, ...args);
}

/** The command with these variables besides the API's URL (no VAGOTH_TOKEN of the test's). */
async function vagothAs(vars: NodeJS.ProcessEnv, ...args: string[]) {
  const { VAGOTH_TOKEN: _ours, ...rest } = process.env;
  const env = { ...rest, VAGOTH_API_URL: h.apiUrl, ...vars };
  return runVagoth(env, args);
}

describe('the vagoth command', () => {
  it('registers a host, creates a VM and decommissions it', async () => {
    const uri = await h.simulatedHost('cli-hv');
    const reg = await vagoth('hosts', 'register', 'cli-hv', uri);
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.stdout)).toMatchObject({ name: 'cli-hv', capacity: { vcpus: 8 } });

    const created = await vagoth(
      'vms',
      'create',
      'cli-vm',
      '--vcpus',
      '1',
      '--memory',
      '512',
      '--nic',
      'default,ip=10.7.0.1',
      '--tag',
      'team=infra',
      '--wait',
    );
    expect(created.stderr).toBe('');
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: 'cli-vm',
      state: 'running',
      host: 'cli-hv',
      tags: { team: 'infra' },
    });

    const gone = await vagoth('vms', 'decommission', 'cli-vm', '--wait');
    expect(JSON.parse(gone.stdout)).toMatchObject({ status: 'completed', kind: 'decommission' });
    const missing = await vagoth('vms', 'get', 'cli-vm');
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toContain('NOT_FOUND');
  });

  it('creates a network and explains a placement', async () => {
    const net = await vagoth(
      'networks',
      'create',
      'lab',
      '172.30.0.0/24',
      '--gateway',
      '172.30.0.1',
      '--reserve',
      '172.30.0.2-172.30.0.9',
    );
    expect(JSON.parse(net.stdout)).toMatchObject({
      name: 'lab',
      cidr: '172.30.0.0/24',
      reserved: [{ first: '172.30.0.2', last: '172.30.0.9' }],
    });
    await vagoth(
      'hosts',
      'register',
      'cli-hv2',
      await h.simulatedHost('cli-hv2'),
      '--tag',
      'rack=r9',
      '--cpu-ratio',
      '2',
    );
    const explained = await vagoth(
      'placement',
      'explain',
      '--vcpus',
      '12',
      '--memory',
      '512',
      '--require',
      'rack=r9',
    );
    expect(JSON.parse(explained.stdout)).toEqual({
      host: 'cli-hv2',
      candidates: ['cli-hv2'],
      rejected: { 'cli-hv': 'not enough vCPUs (8 free at ratio 1)' },
    });
    const created = await vagoth(
      'vms',
      'create',
      'lab-1',
      '--vcpus',
      '1',
      '--memory',
      '256',
      '--nic',
      'lab',
      '--require',
      'rack=r9',
      '--wait',
    );
    expect(JSON.parse(created.stdout)).toMatchObject({
      host: 'cli-hv2',
      definition: { nics: [{ network: 'lab', ip: expect.stringMatching(/^172\.30\.0\.(\d+)$/) }] },
    });
    const ip = (JSON.parse(created.stdout) as { definition: { nics: Array<{ ip: string }> } })
      .definition.nics[0]!.ip;
    expect(Number(ip.split('.')[3])).toBeGreaterThanOrEqual(10);
  });

  it('fails with the field that was wrong', async () => {
    const bad = await vagoth(
      'vms',
      'create',
      'cli-bad',
      '--vcpus',
      '1',
      '--memory',
      '512',
      '--nic',
      'default,ip=10.7.0.300',
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/nics\.0\.ip: must be an IPv4 address.*BAD_REQUEST/);
  });

  it('makes, lists and revokes tokens; reads the admin token file; says what is missing', async () => {
    const made = await vagoth(
      'tokens',
      'create',
      'cli-reader',
      '--role',
      'reader',
      '--expires',
      '600',
    );
    expect(made.code).toBe(0);
    const reader = JSON.parse(made.stdout) as { id: string; token: string };
    expect(reader.token).toMatch(/^vgt_/);
    const listed = await vagoth('tokens', 'list');
    expect(listed.stdout).toContain('cli-reader');
    expect(listed.stdout).not.toContain(reader.token);

    // A reader's token lists, and may not create.
    expect((await vagothAs({ VAGOTH_TOKEN: reader.token }, 'hosts', 'list')).code).toBe(0);
    const refused = await vagothAs(
      { VAGOTH_TOKEN: reader.token },
      'networks',
      'create',
      'n',
      '10.8.0.0/24',
    );
    expect(refused.stderr).toContain('FORBIDDEN');

    // No VAGOTH_TOKEN: the admin token file of the data directory.
    const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-cli-'));
    try {
      const none = await vagothAs({ VAGOTH_DATA_DIR: dir }, 'hosts', 'list');
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('UNAUTHORIZED');
      expect(none.stderr).toContain(
        `set VAGOTH_TOKEN, or run where ${dir}/admin-token is readable`,
      );
      await writeFile(path.join(dir, 'admin-token'), `${h.token}\n`, { mode: 0o600 });
      expect((await vagothAs({ VAGOTH_DATA_DIR: dir }, 'hosts', 'list')).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    expect((await vagoth('tokens', 'revoke', reader.id)).code).toBe(0);
    const revoked = await vagothAs({ VAGOTH_TOKEN: reader.token }, 'hosts', 'list');
    expect(revoked.stderr).toContain('UNAUTHORIZED');
  });
});
