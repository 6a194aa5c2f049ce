import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTRPCClient, httpLink } from '@trpc/client';
import type { ServicesRouter } from '../../services/api/router.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { apiClient, errorCode, waitForOperation } from '../support/api-client.ts';
import { freePort } from '../support/free-port.ts';

// The README's first command, as a user runs it: everything embedded, nothing configured.

let dataDir: string;
let env: NodeJS.ProcessEnv;
let apiUrl: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vagoth-start-'));
  // The embedded Postgres runs as its own user when we are root: it must reach the data dir.
  await chmod(dataDir, 0o755);
  const { DATABASE_URL: _db, TEMPORAL_ADDRESS: _t, ...rest } = process.env;
  const apiPort = await freePort();
  env = {
    ...rest,
    VAGOTH_DATA_DIR: dataDir,
    VAGOTH_API_PORT: String(apiPort),
    VAGOTH_TEMPORAL_PORT: String(await freePort()),
    VAGOTH_TEMPORAL_UI_PORT: String(await freePort()),
    VAGOTH_POSTGRES_PORT: String(await freePort()),
    VAGOTH_SIMULATED_HOSTS: '2',
  };
  apiUrl = `http://127.0.0.1:${apiPort}/trpc`;
});
// Whatever a failing test left running (vagoth, its Postgres, its Temporal) is killed too, so
// nothing outlives the run: each start is a process group of its own.
const groups: number[] = [];
afterAll(async () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // ESRCH: that group has already gone, as it should.
    }
  }
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs `npm start`'s entry point until it prints that it is running; returns its output so far. */
async function start(): Promise<{ child: ChildProcess; banner: string }> {
  const child = spawn(path.resolve('node_modules/.bin/tsx'), ['workers/dev.ts'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  groups.push(child.pid!);
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Press Ctrl-C to stop.')) resolve(out);
    });
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return { child, banner };
}

/** Ctrl-C as a terminal sends it: SIGINT to every process of the group, Postgres and Temporal too. */
async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGINT');
  return exited;
}

describe('npm start', () => {
  it('runs vagoth with embedded services, and finds the same hosts and VMs after a restart', async () => {
    const first = await start();
    expect(first.banner).toContain(`API:          ${apiUrl}`);
    expect(first.banner).toMatch(/Temporal UI:\s+http:\/\/localhost:\d+/);
    // The first start made an admin token, readable by its owner alone, and said where.
    const tokenFile = path.join(dataDir, 'admin-token');
    expect(first.banner).toContain(`Admin token:  ${tokenFile} (new)`);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(
      errorCode(
        await apiClient(apiUrl, undefined)
          .hosts.list.query()
          .catch((e) => e),
      ),
    ).toBe('UNAUTHORIZED');
    const api = apiClient(apiUrl, token);
    expect((await api.hosts.list.query()).map((h) => h.name)).toEqual(['sim-1', 'sim-2']);
    const { operation } = await api.vms.create.mutate({
      name: 'app-1',
      vcpus: 2,
      memoryMiB: 2048,
      nics: [{ network: 'default' }],
    });
    expect(await waitForOperation(api, operation)).toMatchObject({ status: 'completed' });
    // The cloud layer runs over it: its own admin token, and this cluster as `local`.
    const cloudTokenFile = path.join(dataDir, 'cloud-admin-token');
    const cloudUrl = apiUrl.replace(/\/trpc$/, '/cloud/trpc');
    expect(first.banner).toContain(`Cloud API:    ${cloudUrl}`);
    expect(first.banner).toContain(`Cloud token:  ${cloudTokenFile} (new)`);
    expect((await stat(cloudTokenFile)).mode & 0o777).toBe(0o600);
    const cloud = cloudClient(cloudUrl, (await readFile(cloudTokenFile, 'utf8')).trim());
    expect(await cloud.clusters.get.query({ name: 'local' })).toMatchObject({
      driver: 'local',
      capacity: { hosts: 2, vms: 1 },
    });
    // The service layer over the cloud, with the cloud's tokens.
    const servicesUrl = apiUrl.replace(/\/trpc$/, '/services/trpc');
    expect(first.banner).toContain(`Services API: ${servicesUrl}`);
    await cloud.projects.create.mutate({ project: 'shop' });
    const services = createTRPCClient<ServicesRouter>({
      links: [
        httpLink({
          url: servicesUrl,
          headers: {
            authorization: `Bearer ${(await readFile(cloudTokenFile, 'utf8')).trim()}`,
          },
        }),
      ],
    });
    expect(await services.services.list.query({ project: 'shop' })).toEqual([]);
    const before = await api.vms.get.query({ name: 'app-1' });
    // The embedded default network handed out an address of its own (never the gateway).
    expect(before.definition.nics[0]?.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    expect(before.definition.nics[0]?.ip).not.toBe('10.0.0.1');
    expect(await stop(first.child)).toBe(0);

    const second = await start();
    expect(second.banner).toContain('1 simulated domains restored');
    // The registry still has its admin: no second token is made, the first still opens the API.
    expect(second.banner).toContain(`Admin token:  ${tokenFile}\n`);
    expect((await readFile(tokenFile, 'utf8')).trim()).toBe(token);
    expect(second.banner).toContain(`Cloud token:  ${cloudTokenFile}\n`);
    expect((await cloud.clusters.list.query()).map((c) => c.name)).toEqual(['local']);
    expect(await api.vms.get.query({ name: 'app-1' })).toEqual(before);
    expect((await api.hosts.list.query()).map((h) => h.name)).toEqual(['sim-1', 'sim-2']);
    // The workflow history outlived the restart too.
    expect(
      await api.operations.get.query({
        id: operation.id,
        runId: operation.runId,
        updateId: operation.updateId,
      }),
    ).toMatchObject({ status: 'completed' });
    const teardown = await api.vms.decommission.mutate({ name: 'app-1' });
    expect(await waitForOperation(api, teardown.operation)).toMatchObject({ status: 'completed' });
    expect(errorCode(await api.vms.get.query({ name: 'app-1' }).catch((e: unknown) => e))).toBe(
      'NOT_FOUND',
    );
    expect(await stop(second.child)).toBe(0);
  }, 180_000);
});
