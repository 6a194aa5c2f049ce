import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { inject } from 'vitest';
import type { DriverFactory } from '../../drivers/index.ts';
import type { Sql } from '../../registry/db.ts';
import { createNetwork } from '../../registry/networks.ts';
import { connectClient, startWorker, type VagothWorker } from '../../workers/compose.ts';
import { startCluster, type Cluster } from './cluster.ts';
import { createTestDatabase } from './harness.ts';
import {
  entityWorkflowsOnly,
  findViolations,
  takeSnapshot,
  type CheckOptions,
} from './invariants.ts';
import { tokenCaller, type ApiCaller } from './token-caller.ts';
import { WorkerProcess } from './worker-process.ts';

export interface ChaosEnvOptions {
  hosts: number;
  /** `process`: a worker a test can kill; a factory: an in-process worker on these drivers. */
  worker: 'process' | { driverFactory: DriverFactory };
  temporalAddress?: string;
  databaseUrl?: string;
}

export interface ChaosEnv {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  cluster: Cluster;
  api: ApiCaller;
  process: WorkerProcess | null;
  violations(options?: CheckOptions): Promise<string[]>;
  /** Waits until nothing but entity workflows runs on the task queue; false at the deadline. */
  quiet(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A database of its own, libvirtd-backed hosts registered through the API, and a worker: the
 * stage every chaos test plays on. Hosts get a vCPU ratio of 8 so memory, not CPUs, bounds them.
 */
export async function startChaosEnv(options: ChaosEnvOptions): Promise<ChaosEnv> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error(err));
  };
  try {
    const db = options.databaseUrl ? null : await createTestDatabase();
    if (db) cleanups.push(() => db.drop());
    const databaseUrl = options.databaseUrl ?? db!.url;
    const address = options.temporalAddress ?? inject('temporalAddress');
    const taskQueue = `chaos-${randomUUID()}`;
    const cluster = await startCluster({ hosts: options.hosts });
    cleanups.push(() => cluster.close());
    const temporal = await connectClient(address, 'default');
    cleanups.push(() => temporal.connection.close());
    const { connect } = await import('../../registry/db.ts');
    const sql = db?.sql ?? connect(databaseUrl);
    if (!db) cleanups.push(() => sql.end());

    let proc: WorkerProcess | null = null;
    let inProcess: VagothWorker | null = null;
    if (options.worker === 'process') {
      const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-chaos-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const bundlePath = path.join(dir, 'workflows.js');
      await writeFile(bundlePath, inject('workflowBundle'));
      proc = new WorkerProcess({ temporalAddress: address, databaseUrl, taskQueue, bundlePath });
      cleanups.push(() => proc!.stop());
      await proc.start();
    } else {
      inProcess = await startWorker({
        sql,
        address,
        namespace: 'default',
        taskQueue,
        workflowBundle: { code: inject('workflowBundle') },
        driverFactory: options.worker.driverFactory,
      });
      cleanups.push(() => inProcess!.shutdown());
    }
    const { api } = await tokenCaller({
      sql,
      temporal,
      taskQueue,
      namespace: 'default',
      temporalUiUrl: 'http://ui.test',
      placementPolicy: 'spread',
    });
    await createNetwork(sql, { name: 'default', cidr: '10.0.0.0/8' });
    for (const host of cluster.hosts) {
      await api.hosts.register({ name: host.name, driver: 'libvirt', uri: host.uri, cpuRatio: 8 });
    }
    const src = { sql, temporal, taskQueue, statuses: () => cluster.statuses() };
    return {
      sql,
      temporal,
      taskQueue,
      cluster,
      api,
      process: proc,
      violations: async (o = { mayStayOpen: entityWorkflowsOnly }) =>
        findViolations(await takeSnapshot(src), o),
      async quiet(timeoutMs = 300_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const s = await takeSnapshot(src);
          const names = new Set(s.vms.map((v) => v.name));
          if (s.openWorkflows.every((id) => entityWorkflowsOnly!(id, names))) return true;
          if (Date.now() > deadline) return false;
          await new Promise((r) => setTimeout(r, 1000));
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
