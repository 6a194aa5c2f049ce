import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type LogLevel,
} from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { positionInterceptor } from '../activities/run-position.ts';
import { updateOutcomes } from '../api/update-outcomes.ts';
import type { PlacementPolicy } from '../allocator/place.ts';
import { loadConfig, type ImagesOptions } from '../config.ts';
import {
  createDriverFactory,
  DriverPool,
  type DriverFactory,
  type DriversOptions,
} from '../drivers/index.ts';
import { connect, type Sql } from '../registry/db.ts';
import { migrate } from '../registry/migrate.ts';
import { ensureSearchAttributes } from './search-attributes.ts';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** The workflow interceptors every bundle carries (workflows/interceptors.ts). */
export const workflowInterceptorModules = [
  fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url)),
];

/** Once per process, before any worker starts. */
export function installLogging(level: LogLevel): void {
  Runtime.install({ logger: new DefaultLogger(level) });
}

/** Opens the registry and brings its schema up to date. */
export async function openRegistry(url: string): Promise<Sql> {
  const sql = connect(url);
  await migrate(sql);
  return sql;
}

/**
 * A client on the SDK's native connection (the one workers use), not grpc-js: its gRPC runs
 * in Rust off the event loop, leaving the API's thread only the protobuf encoding. Measured on
 * the bench's floor lifecycle (update-with-start, then an update), alternating in one process:
 * 3.1 ms less CPU per lifecycle in the Node process (31.7 against 34.8 ms, 4 rounds each).
 */
export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await NativeConnection.connect({ address });
  return new Client({ connection, namespace, interceptors: { workflow: [updateOutcomes] } });
}

export interface VagothWorkerOptions {
  sql: Sql;
  address: string;
  namespace: string;
  taskQueue: string;
  driverFactory?: DriverFactory;
  /** Builds the driver factory when none is given; config.ts's `drivers` by default. */
  drivers?: DriversOptions;
  placementPolicy?: PlacementPolicy;
  /**
   * Threads that run workflow code; 1 by default (tests run many workers at once). With one,
   * that thread is the worker's bottleneck under load (80-90% busy at 30 lifecycles/s, most of
   * it the SDK's own work per activation), so a worker of its own takes config.ts's value.
   */
  workflowThreads?: number;
  /** A prebuilt workflow bundle (tests build one once); otherwise bundled from source. */
  workflowBundle?: { code: string };
  /** Where images come from and are kept; config.ts's `images` by default. */
  images?: ImagesOptions;
}

export interface VagothWorker {
  worker: Worker;
  drivers: DriverPool;
  /** Resolves when the worker has stopped. */
  running: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(options: VagothWorkerOptions): Promise<VagothWorker> {
  const connection = await NativeConnection.connect({ address: options.address });
  const drivers = new DriverPool(
    options.driverFactory ?? createDriverFactory(options.drivers ?? loadConfig().drivers),
  );
  const added = await ensureSearchAttributes(connection, options.namespace);
  if (added.length > 0) console.log(`registered search attributes ${added.join(', ')}`);
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowThreadPoolSize: options.workflowThreads ?? 1,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
    interceptors: {
      // The bundle, when given, was built with the same workflow interceptors.
      ...(options.workflowBundle ? {} : { workflowModules: workflowInterceptorModules }),
      activity: [
        positionInterceptor({
          sql: options.sql,
          service: connection.workflowService,
          namespace: options.namespace,
        }),
      ],
    },
    activities: createActivities({
      sql: options.sql,
      drivers,
      defaultPolicy: options.placementPolicy ?? 'spread',
      images: options.images ?? loadConfig().images,
    }),
  });
  const running = worker.run().finally(async () => {
    await drivers.close();
    await connection.close();
  });
  return {
    worker,
    drivers,
    running,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
