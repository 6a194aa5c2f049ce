import path from 'node:path';
import { z } from 'zod';

// The one place that reads process.env: every other module gets a Config.
const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);

const schema = z.object({
  VAGOTH_API_PORT: port(7780),
  VAGOTH_API_HOST: z.string().min(1).default('127.0.0.1'),
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[\w.-]+:\d+$/, 'must be host:port')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  VAGOTH_TASK_QUEUE: z.string().min(1).default('vagoth'),
  VAGOTH_TEMPORAL_UI_URL: z.url().optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  VAGOTH_DATA_DIR: z.string().min(1).default('.vagoth'),
  VAGOTH_SIMULATED_HOSTS: z.coerce.number().int().min(0).max(16).default(3),
  VAGOTH_TEMPORAL_CLI: z.string().min(1).optional(),
  VAGOTH_TEMPORAL_PORT: port(7233),
  VAGOTH_TEMPORAL_UI_PORT: port(8233),
  VAGOTH_POSTGRES_PORT: port(5433),
  VAGOTH_API_URL: z.url().optional(),
  VAGOTH_PLACEMENT_POLICY: z.enum(['spread', 'pack']).default('spread'),
  VAGOTH_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('WARN'),
});

export interface Config {
  api: { host: string; port: number; /** Where clients (the CLI) reach the API. */ url: string };
  temporal: {
    /** Unset: `npm start` runs a dev server of its own. */
    address: string | undefined;
    namespace: string;
    taskQueue: string;
    uiUrl: string;
    cli: string;
    devPort: number;
    devUiPort: number;
  };
  /** Unset: `npm start` runs an embedded PostgreSQL of its own. */
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPostgresPort: number;
  simulatedHosts: number;
  /** The cluster's placement policy, for requests that name none. */
  placementPolicy: 'spread' | 'pack';
  /** The worker's log level (Temporal's runtime logger). */
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.VAGOTH_DATA_DIR);
  return {
    api: {
      host: e.VAGOTH_API_HOST,
      port: e.VAGOTH_API_PORT,
      url: e.VAGOTH_API_URL ?? `http://127.0.0.1:${e.VAGOTH_API_PORT}/trpc`,
    },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.VAGOTH_TASK_QUEUE,
      uiUrl: (e.VAGOTH_TEMPORAL_UI_URL ?? `http://localhost:${e.VAGOTH_TEMPORAL_UI_PORT}`).replace(
        /\/$/,
        '',
      ),
      cli: e.VAGOTH_TEMPORAL_CLI ?? path.resolve('.tools/bin/temporal'),
      devPort: e.VAGOTH_TEMPORAL_PORT,
      devUiPort: e.VAGOTH_TEMPORAL_UI_PORT,
    },
    databaseUrl: e.DATABASE_URL,
    dataDir,
    embeddedPostgresPort: e.VAGOTH_POSTGRES_PORT,
    simulatedHosts: e.VAGOTH_SIMULATED_HOSTS,
    logLevel: e.VAGOTH_LOG_LEVEL,
    placementPolicy: e.VAGOTH_PLACEMENT_POLICY,
  };
}
