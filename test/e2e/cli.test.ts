import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';

const exec = promisify(execFile);
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ http: true });
});
afterAll(async () => {
  await h?.close();
});

/** Runs the `vagoth` command against the test's API; resolves even when it fails. */
async function vagoth(...args: string[]) {
  const env = { ...process.env, VAGOTH_API_URL: h.apiUrl };
  return exec(path.resolve('cli/vagoth.mjs'), args, { env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
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
});
