/**
 * Records the history of every workflow kind vagoth runs, into test/histories/, for the replay
 * test. Run it again whenever a workflow changes on purpose (and only then: a history recorded
 * by the changed code proves nothing about the old one):
 *
 *     npx tsx test/replay/record-histories.ts
 *
 * It uses TEMPORAL_ADDRESS or starts a dev server of its own, and DATABASE_URL (default: the
 * local PostgreSQL) to create a scratch database it drops afterwards. The scenario goes through
 * the API, as a client would, so it records whatever workflows today's API starts; add a step
 * here when a new operation appears (stop, migrate, the monitor's poll, ...).
 */
import { localTemporal } from '../support/local-temporal.ts';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { format, resolveConfig } from 'prettier';
import { loadConfig } from '../../config.ts';
import { testDrivers as createDriver } from '../support/host-uris.ts';
import { writeSimulatedHost } from '../../drivers/libvirt/simulated-host.ts';
import { connect } from '../../registry/db.ts';
import { migrate } from '../../registry/migrate.ts';
import { connectClient, startWorker } from '../../workers/compose.ts';
import { faultyDriverFactory, rejected } from '../support/faulty-driver.ts';
import { withDatabase } from '../support/global-setup.ts';
import { tokenCaller } from '../support/token-caller.ts';

export const HISTORIES_DIR = fileURLToPath(new URL('../histories/', import.meta.url));

Runtime.install({ logger: new DefaultLogger('ERROR') });
const config = loadConfig();
const env = await localTemporal({ format: 'pretty', level: 'error' });
const { address } = env;
const adminUrl = config.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `vagoth_histories_${process.pid}`;
const admin = connect(adminUrl, { max: 1 });
await admin.unsafe(`CREATE DATABASE ${dbName}`);
const sql = connect(withDatabase(adminUrl, dbName));
const hostsDir = await mkdtemp(path.join(tmpdir(), 'vagoth-histories-'));
const taskQueue = `histories-${randomUUID()}`;
const temporal = await connectClient(address, 'default');
try {
  await migrate(sql);
  // One VM whose boot the host refuses: the saga's compensation path gets a history too.
  const driverFactory = faultyDriverFactory(createDriver, {
    start: (name) => (name === 'hist-refused' ? rejected('no boot device') : null),
  });
  const worker = await startWorker({
    sql,
    address,
    namespace: 'default',
    taskQueue,
    driverFactory,
    images: {
      store: path.join(hostsDir, 'images'),
      sources: { dirs: [hostsDir], urls: [] },
      maxBytes: 1024 ** 3,
    },
  });
  const base = {
    sql,
    temporal,
    taskQueue,
    namespace: 'default',
    temporalUiUrl: 'http://ui',
    placementPolicy: 'spread' as const,
    imageSources: { dirs: [hostsDir], urls: [] },
  };
  const { api } = await tokenCaller(base);
  try {
    await api.networks.create({ name: 'default', cidr: '10.0.0.0/16', gateway: '10.0.0.1' });
    const uri = await writeSimulatedHost(hostsDir, 'hist-host', { cpus: 8, memoryMiB: 16384 });
    await api.hosts.register({ name: 'hist-host', driver: 'libvirt', uri });
    const uri2 = await writeSimulatedHost(hostsDir, 'hist-host-2', { cpus: 8, memoryMiB: 16384 });
    await api.hosts.register({ name: 'hist-host-2', driver: 'libvirt', uri: uri2 });
    const vm = { vcpus: 1, memoryMiB: 256, nics: [{ network: 'default' }] };
    await api.vms.create({ name: 'hist-ok', ...vm });
    await api.vms.create({ name: 'hist-refused', ...vm });
    const state = async (want: string) =>
      until(async () => (await api.vms.get({ name: 'hist-ok' })).state === want, want);
    await state('running');
    // The entity's operations, each an update on the same run, then the monitor's poll.
    await api.vms.stop({ name: 'hist-ok' });
    await state('stopped');
    await api.vms.start({ name: 'hist-ok' });
    await state('running');
    // The host's workflow: a drain (the VM's migrate) then activate.
    const from = (await api.vms.get({ name: 'hist-ok' })).host!;
    await api.hosts.maintenance({ name: from });
    await api.hosts.activate({ name: from });
    await api.hosts.poll({});
    await api.vms.decommission({ name: 'hist-ok' });
    await until(async () => (await api.vms.list()).every((v) => v.state === 'failed'));
    // An image imported, one refused (its digest), and the first deleted.
    const source = path.join(hostsDir, 'hist.raw');
    await writeFile(source, Buffer.alloc(1024 * 1024, 7));
    await api.images.create({ name: 'hist-image', source });
    await api.images.create({ name: 'hist-image-bad', source, sha256: '0'.repeat(64) });
    const imported = async () =>
      (await api.images.list()).every((i) => i.status === 'ready' || i.status === 'failed');
    await until(imported, 'images imported');
    await api.images.delete({ name: 'hist-image' });
    await until(async () => (await openWorkflows()).length === 0, 'workflows still running');
    await saveHistories();
  } finally {
    await worker.shutdown();
  }
} finally {
  await temporal.connection.close();
  await sql.end();
  await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  await env.teardown();
  await rm(hostsDir, { recursive: true, force: true });
}

async function openWorkflows(): Promise<string[]> {
  const ids: string[] = [];
  const query = `ExecutionStatus = "Running" AND TaskQueue = "${taskQueue}"`;
  for await (const wf of temporal.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

/**
 * One file per workflow run, named `<workflow type>.<workflow id>.json`, replacing the old set.
 * Files named `*.before-<change>.json` are kept: runs recorded before a workflow change made
 * under `patched(<change>)`, or before a change in how runs are versioned, which the code must
 * go on replaying while such runs may still be open.
 */
async function saveHistories(): Promise<void> {
  await mkdir(HISTORIES_DIR, { recursive: true });
  for (const f of await readdir(HISTORIES_DIR)) {
    // The service layer's reconciles are record-services-history.ts's to record.
    const ours =
      !f.includes('.before-') &&
      !f.startsWith('reconcileServiceWorkflow.') &&
      !f.startsWith('serviceReconcile.');
    if (f.endsWith('.json') && ours) await rm(path.join(HISTORIES_DIR, f));
  }
  const prettier = await resolveConfig(path.join(HISTORIES_DIR, 'x.json'));
  const taken = new Set<string>();
  for await (const wf of temporal.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
    const history = await temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    // A workflow id may have had several runs (a host's workflow, one per burst of operations).
    let base = `${wf.type}.${wf.workflowId.replace(/[^\w.-]+/g, '_')}`;
    if (taken.has(base)) base += `.${wf.runId.slice(0, 8)}`;
    taken.add(base);
    const file = `${base}.json`;
    // Prettier-formatted, as `npm run lint` checks every JSON file in the tree.
    const text = await format(historyToJSON(history), { ...prettier, parser: 'json' });
    await writeFile(path.join(HISTORIES_DIR, file), text);
    console.log(`recorded ${file} (${history.events?.length ?? 0} events)`);
  }
}

async function until(check: () => Promise<boolean>, what = 'condition', timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
