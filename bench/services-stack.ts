// bench/services' stack, composed as `npm start` composes it: the VM worker over simulated
// libvirt hosts (the test driver, in this process), the cluster API, and above it the cloud
// and the service layer (workers/cloud.ts startLayersAbove: the services' worker on
// `vagoth-services` and their API), all on one HTTP server, one PostgreSQL database and one
// Temporal dev server.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createContextInner } from '../api/context.ts';
import { createCaller } from '../api/router.ts';
import { startApiServer } from '../api/server.ts';
import { CLOUD_TRPC_PATH } from '../cloud/api/server.ts';
import { loadConfig, type Config } from '../config.ts';
import { writeSimulatedHost } from '../drivers/libvirt/simulated-host.ts';
import type { Sql } from '../registry/db.ts';
import { SERVICES_TRPC_PATH } from '../services/api/server.ts';
import { cloudClient } from '../test/support/cloud-client.ts';
import { apiDeps } from '../workers/api-deps.ts';
import { startLayersAbove } from '../workers/cloud.ts';
import { startWorker } from '../workers/compose.ts';
import { servicesClient } from '../cli/services-client.ts';
import { startTemporal } from './api-stack.ts';
import { benchDatabase } from './support.ts';

const run = promisify(execFile);

export interface ServicesStack {
  sql: Sql;
  /** The Temporal dev server's address (for workers of the bench's own). */
  address: string;
  temporal: Awaited<ReturnType<typeof startTemporal>>['client'];
  /** A member of every project in `projects`, through the cloud and the service layer. */
  cloud: ReturnType<typeof cloudClient>;
  services: ReturnType<typeof servicesClient>;
  close(): Promise<void>;
}

/** The configuration `npm start` would run with, its files under `dir`. */
function benchConfig(dir: string, allowed: string): Config {
  const config = loadConfig();
  const hostUris = { ...config.drivers.hostUris, simulatedHosts: true, simulatedHostDirs: [dir] };
  return {
    ...config,
    drivers: { ...config.drivers, hostUris },
    images: {
      store: path.join(dir, 'store'),
      sources: { dirs: [allowed], urls: [] },
      maxBytes: 1024 ** 3,
    },
    cloud: {
      ...config.cloud,
      enabled: true,
      adminTokenFile: path.join(dir, 'cloud-admin-token'),
      // Not during the measured runs: its rounds are load of their own, as in bench/api.
      reconcileMs: 3_600_000,
    },
  };
}

/**
 * The stack with `hosts` simulated hosts (16 CPUs at 4:1, 64 GiB each), an empty 64 MiB image
 * `base` and a network `default` published to every project, and `projects` made with one
 * member, whose token the answered clients hold.
 */
export async function startServicesStack(options: {
  hosts: number;
  projects: string[];
  pool: number;
}): Promise<ServicesStack> {
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const temporal = await startTemporal();
    stops.push(temporal.close);
    const db = await benchDatabase(options.pool);
    stops.push(db.drop);
    const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-services-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    const allowed = path.join(dir, 'allowed');
    await mkdir(allowed);
    const image = path.join(allowed, 'base.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    const config = benchConfig(dir, allowed);

    const worker = await startWorker({
      sql: db.sql,
      address: temporal.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      drivers: config.drivers,
      images: config.images,
      workflowThreads: config.workflowThreads,
    });
    stops.push(worker.shutdown);
    const deps = apiDeps(config, db.sql, temporal.client);
    const layers = await startLayersAbove(config, db.sql, deps, temporal);
    stops.push(layers.close);
    const server = await startApiServer(
      deps,
      { ...config.api, host: '127.0.0.1', port: 0 },
      layers.mounts,
    );
    stops.push(server.close);

    const cluster = createCaller(
      createContextInner(deps, { principal: { tokenId: null, name: 'bench', role: 'admin' } }),
    );
    await cluster.networks.create({ name: 'default', cidr: '10.0.0.0/16', gateway: '10.0.0.1' });
    for (let i = 1; i <= options.hosts; i++) {
      const name = `sim-${i}`;
      const uri = await writeSimulatedHost(dir, name, { cpus: 16, memoryMiB: 65536 });
      await cluster.hosts.register({ name, driver: 'libvirt', uri, cpuRatio: 4, diskGiB: 1000 });
    }
    const made = await cluster.images.create({ name: 'base', source: image });
    await temporal.client.workflow.getHandle(made.operation!.id, made.operation!.runId).result();

    const admin = cloudClient(`${server.origin}${CLOUD_TRPC_PATH}`, layers.cloud!.adminToken!);
    await admin.users.create.mutate({ name: 'ann' });
    for (const project of options.projects) {
      await admin.projects.create.mutate({ project });
      await admin.projects.addMember.mutate({ project, user: 'ann', role: 'member' });
    }
    await admin.images.publish.mutate({ cluster: 'local', image: 'base' });
    await admin.networks.grant.mutate({ cluster: 'local', network: 'default' });
    const { token } = await admin.tokens.create.mutate({ name: 'bench', user: 'ann' });
    return {
      sql: db.sql,
      address: temporal.address,
      temporal: temporal.client,
      cloud: cloudClient(`${server.origin}${CLOUD_TRPC_PATH}`, token),
      services: servicesClient(`${server.origin}${SERVICES_TRPC_PATH}`, token),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
