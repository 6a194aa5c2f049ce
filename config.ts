import { availableParallelism, homedir } from 'node:os';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import type { DriversOptions } from './drivers/index.ts';
import type { ImageSourcePolicy } from './images/sources.ts';
import { REPORT_ONLY, type ReconcilePolicies } from './monitor/reconcile.ts';

// The one place that reads process.env: every other module gets a Config.
const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);
const millis = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(100)
    .max(24 * 3600 * 1000)
    .default(fallback);
const geatsType = (fallback: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a geats type name such as kvm')
    .default(fallback);

/** Comma-separated items, blanks dropped. */
const commaList = z
  .string()
  .default('')
  .transform((text) =>
    text
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  );

/** Comma-separated absolute paths; empty: none. */
const pathList = commaList
  .refine(
    (paths) => paths.every((p) => path.isAbsolute(p)),
    'must be absolute paths separated by commas',
  )
  .transform((paths) => paths.map((p) => path.resolve(p)));

/** Comma-separated CIDRs (IPv4 or IPv6); empty: none. */
const cidrList = commaList
  .refine(
    (cidrs) =>
      cidrs.every((c) => {
        const [base, prefix, ...rest] = c.split('/');
        const bits = isIPv4(base ?? '') ? 32 : isIPv6(base ?? '') ? 128 : 0;
        return rest.length === 0 && /^\d{1,3}$/.test(prefix ?? '') && Number(prefix) <= bits;
      }),
    'must be CIDRs such as 127.0.0.0/8, separated by commas',
  )
  .refine(
    // An IPv6 range over the IPv4-mapped ones (::ffff:0:0/96) would admit every IPv4 address.
    (cidrs) =>
      cidrs.every((c) => {
        const [base, prefix] = c.split('/');
        if (!isIPv6(base!)) return true;
        const range = new BlockList();
        range.addSubnet(base!, Number(prefix), 'ipv6');
        return !range.check('::ffff:a9fe:a9fe', 'ipv6');
      }),
    'must not cover IPv4-mapped addresses (::ffff:0:0/96): name IPv4 ranges as such',
  );

/** Whether `u` is an http or https URL. */
const isHttpUrl = (u: string) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol);

/** Comma-separated http(s) URL prefixes; empty: none. */
const urlPrefixes = commaList
  .refine((urls) => urls.every(isHttpUrl), 'must be http(s) URL prefixes separated by commas')
  .transform((urls) => urls.map((u) => new URL(u).href));

/**
 * `name=url,...`: other vagoth clouds a service's placements may name, by name, each with its
 * tRPC URL (http or https). A caller names a cloud only; a URL never comes from a caller.
 */
const namedClouds = commaList.transform((entries, ctx) => {
  const clouds: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    const name = at < 0 ? entry : entry.slice(0, at).trim();
    const url = at < 0 ? '' : entry.slice(at + 1).trim();
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(name)} must be a cloud name (lower-case letters, digits or '-') before '=url'`,
      });
    } else if (Object.hasOwn(clouds, name)) {
      ctx.addIssue({ code: 'custom', message: `names cloud ${name} twice` });
    } else if (!isHttpUrl(url)) {
      ctx.addIssue({ code: 'custom', message: `cloud ${name}'s URL must be an http(s) URL` });
    } else clouds[name] = new URL(url).href;
  }
  return clouds;
});

const flag = z
  .enum(['true', 'false', '1', '0', ''])
  .default('')
  .transform((v) => v === 'true' || v === '1');

// What each discrepancy kind may be set to besides `report`.
const POLICY_CHOICES = {
  missing: ['report', 'unassign'],
  unknownOurs: ['report', 'power-off'],
  unknownForeign: ['report', 'power-off'],
  misplaced: ['report', 'adopt'],
  drifted: ['report', 'adopt'],
} as const;
type PolicyKind = keyof typeof POLICY_CHOICES;

/** `kind=policy,...`; a kind left out keeps `report`. */
const reconcilePolicy = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const policies: Partial<Record<PolicyKind, string>> = {};
    for (const entry of text.split(',').filter((e) => e.trim() !== '')) {
      const [kind = '', choice = ''] = entry.split('=').map((s) => s.trim());
      const choices: readonly string[] | undefined = POLICY_CHOICES[kind as PolicyKind];
      if (!choices) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown kind ${JSON.stringify(kind)} (one of ${Object.keys(POLICY_CHOICES).join(', ')})`,
        });
      } else if (!choices.includes(choice)) {
        ctx.addIssue({
          code: 'custom',
          message: `${kind} must be ${choices.join(' or ')}, not ${JSON.stringify(choice)}`,
        });
      } else policies[kind as PolicyKind] = choice;
    }
    return policies as Partial<Omit<ReconcilePolicies, 'downAfter'>>;
  });

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
  VAGOTH_ALLOW_SIMULATED_HOSTS: flag,
  VAGOTH_SIMULATED_HOST_DIRS: pathList,
  VAGOTH_GEATS_AGENTS: pathList,
  VAGOTH_LIBVIRT_SOCKET_DIRS: pathList,
  VAGOTH_IMAGE_DIRS: pathList,
  VAGOTH_IMAGE_URLS: urlPrefixes,
  VAGOTH_CLOUD: flag,
  VAGOTH_CLOUD_CLUSTER_URLS: urlPrefixes,
  VAGOTH_CLOUD_CLUSTER_TIMEOUT_MS: millis(10_000),
  VAGOTH_CLOUD_RECONCILE_MS: millis(60_000),
  VAGOTH_SERVICES_PROBE_CIDRS: cidrList,
  VAGOTH_SERVICES_CLOUD_URL: z.string().refine(isHttpUrl, 'must be an http(s) URL').optional(),
  VAGOTH_SERVICES_PROBE_TIMEOUT_MS: millis(2_000),
  VAGOTH_SERVICES_CLOUDS: namedClouds,
  VAGOTH_IMAGE_STORE: z.string().min(1).optional(),
  VAGOTH_IMAGE_MAX_GIB: z.coerce.number().int().min(1).max(65_536).default(256),
  VAGOTH_SIMULATED_HOSTS: z.coerce.number().int().min(0).max(16).default(3),
  VAGOTH_TEMPORAL_CLI: z.string().min(1).optional(),
  VAGOTH_TEMPORAL_PORT: port(7233),
  VAGOTH_TEMPORAL_UI_PORT: port(8233),
  VAGOTH_POSTGRES_PORT: port(5433),
  VAGOTH_API_URL: z.url().optional(),
  VAGOTH_API_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(1024 * 1024),
  VAGOTH_API_MAX_BATCH: z.coerce.number().int().min(1).max(1000).default(10),
  VAGOTH_TOKEN_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(5_000),
  VAGOTH_TOKEN: z.string().regex(/^\S+$/, 'must be a token without spaces').optional(),
  VAGOTH_PLACEMENT_POLICY: z.enum(['spread', 'pack']).default('spread'),
  VAGOTH_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('WARN'),
  VAGOTH_WORKFLOW_THREADS: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(Math.min(4, availableParallelism())),
  VAGOTH_LIBVIRT_POOLS: z
    .string()
    .regex(/^[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*$/, 'must be pool names separated by commas')
    .default('vagoth'),
  // The domain type of libvirt domains: kvm, or qemu (software emulation) on hosts without KVM.
  VAGOTH_LIBVIRT_DOMAIN_TYPE: z.enum(['kvm', 'qemu']).default('kvm'),
  VAGOTH_LIBVIRT_COPY_MIB_S: z.coerce.number().int().min(0).max(1_000_000).default(0),
  // Pools every libvirt host reaches as the same storage: a move leaves their volumes in place.
  VAGOTH_LIBVIRT_SHARED_POOLS: z
    .string()
    .regex(/^([A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*)?$/, 'must be pool names separated by commas')
    .default(''),
  // Streamed zeros by default: they overwrite every byte and report (and resume) by offset.
  VAGOTH_LIBVIRT_WIPE: z.enum(['libvirt', 'stream']).default('stream'),
  VAGOTH_LIBVIRT_WIPE_MIB_S: z.coerce.number().int().min(0).max(1_000_000).default(0),
  // A directory on each libvirt host where every guest's serial console is also logged, as
  // <dir>/<vm id>.log (libvirt's <log file>); unset: none.
  VAGOTH_LIBVIRT_CONSOLE_DIR: z
    .string()
    .regex(/^\/[^\0'"<>&]*$/, "must be an absolute path without quotes, '<', '>' or '&'")
    .optional(),
  VAGOTH_SSH_KEY: z.string().min(1).optional(),
  VAGOTH_SSH_KEY_PASSPHRASE: z.string().optional(),
  VAGOTH_SSH_KNOWN_HOSTS: z.string().min(1).optional(),
  VAGOTH_SSH_CONNECT_TIMEOUT_MS: millis(10_000),
  VAGOTH_GEATS_TIMEOUT_MS: millis(15_000),
  VAGOTH_GEATS_LONG_TIMEOUT_MS: millis(600_000),
  VAGOTH_GEATS_VM_TYPE: geatsType('kvm'),
  VAGOTH_GEATS_STORAGE_TYPE: geatsType('local'),
  VAGOTH_MONITOR_INTERVAL_S: z.coerce.number().int().min(1).max(86_400).default(30),
  VAGOTH_MONITOR_DOWN_AFTER: z.coerce.number().int().min(1).max(1000).default(3),
  VAGOTH_RECONCILE_POLICY: reconcilePolicy,
});

export interface Config {
  api: {
    host: string;
    port: number;
    /** Where clients (the CLI) reach the API. */
    url: string;
    maxBodyBytes: number;
    maxBatchSize: number;
    /** How long a token's check is trusted before the registry is asked again. */
    tokenCacheMs: number;
  };
  /** How the CLI authenticates: this token, else the one in `adminTokenFile`. */
  token: string | undefined;
  /** Where the first API process writes the admin token it makes (mode 0600). */
  adminTokenFile: string;
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
  /** Threads the worker runs workflow code on (each a V8 context of its own). */
  workflowThreads: number;
  /** How drivers reach hosts: SSH credentials and geats's timeouts and types. */
  drivers: DriversOptions;
  /** The monitor's schedule and what it may do about each discrepancy. */
  monitor: { intervalSeconds: number; policies: ReconcilePolicies };
  images: ImagesOptions;
  /** The cloud layer (cloud/), served beside the cluster's API. */
  cloud: {
    /** Whether the API process serves the cloud layer too (`npm start`: yes). */
    enabled: boolean;
    /** Where the first process writes the cloud's admin token it makes (mode 0600). */
    adminTokenFile: string;
    /** URL prefixes a vagoth cluster's URL must start with; none: no remote cluster. */
    clusterUrls: string[];
    /** How long one call to a vagoth cluster may take before it counts as not answering. */
    clusterTimeoutMs: number;
    /** How often the cloud looks for instances whose clusters no longer have their VMs. */
    reconcileMs: number;
  };
  services: {
    /**
     * The cloud a services worker of its own (`npm run services-worker`) reaches over HTTP:
     * its tRPC URL (`http://<cloud>/cloud/trpc`). Beside the cloud, it is called in-process.
     */
    cloudUrl: string | undefined;
    /**
     * Other vagoth clouds a service's placements may name (`{ cloud: 'east' }`): their tRPC
     * URLs by name. None: a service lives in this deployment's cloud only.
     */
    clouds: Record<string, string>;
    /** Health checks go only to addresses in these CIDRs (none: checks always fail). */
    probe: { cidrs: string[]; timeoutMs: number };
  };
}

/** Where images come from and where the workers keep them. */
export interface ImagesOptions {
  /** The workers' image store: a directory (shared, where workers run on several machines). */
  store: string;
  /** Where images.create may read from: directories and URL prefixes. */
  sources: ImageSourcePolicy;
  /** An image larger than this is refused. */
  maxBytes: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** What `npm start` (workers/dev.ts) assumes unless told otherwise: its simulated hosts. */
export const EMBEDDED_DEFAULTS: Readonly<Record<string, string>> = {
  VAGOTH_ALLOW_SIMULATED_HOSTS: 'true',
  VAGOTH_CLOUD: 'true',
};

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  defaults: Readonly<Record<string, string>> = {},
): Config {
  const parsed = schema.safeParse({ ...defaults, ...env });
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
      maxBodyBytes: e.VAGOTH_API_MAX_BODY_BYTES,
      maxBatchSize: e.VAGOTH_API_MAX_BATCH,
      tokenCacheMs: e.VAGOTH_TOKEN_CACHE_MS,
    },
    token: e.VAGOTH_TOKEN,
    adminTokenFile: path.join(dataDir, 'admin-token'),
    cloud: {
      enabled: e.VAGOTH_CLOUD,
      adminTokenFile: path.join(dataDir, 'cloud-admin-token'),
      clusterUrls: e.VAGOTH_CLOUD_CLUSTER_URLS,
      clusterTimeoutMs: e.VAGOTH_CLOUD_CLUSTER_TIMEOUT_MS,
      reconcileMs: e.VAGOTH_CLOUD_RECONCILE_MS,
    },
    services: {
      cloudUrl: e.VAGOTH_SERVICES_CLOUD_URL,
      clouds: e.VAGOTH_SERVICES_CLOUDS,
      /** Where health checks may be sent: nowhere unless the operator names ranges. */
      probe: {
        cidrs: e.VAGOTH_SERVICES_PROBE_CIDRS,
        timeoutMs: e.VAGOTH_SERVICES_PROBE_TIMEOUT_MS,
      },
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
    workflowThreads: e.VAGOTH_WORKFLOW_THREADS,
    placementPolicy: e.VAGOTH_PLACEMENT_POLICY,
    drivers: {
      hostUris: {
        geatsAgents: e.VAGOTH_GEATS_AGENTS,
        simulatedHosts: e.VAGOTH_ALLOW_SIMULATED_HOSTS,
        // Simulated hosts npm start writes live in the data directory.
        simulatedHostDirs: [dataDir, ...e.VAGOTH_SIMULATED_HOST_DIRS],
        libvirtSocketDirs: e.VAGOTH_LIBVIRT_SOCKET_DIRS,
      },
      libvirt: {
        pools: e.VAGOTH_LIBVIRT_POOLS.split(','),
        domainType: e.VAGOTH_LIBVIRT_DOMAIN_TYPE,
        copyMiBPerSecond: e.VAGOTH_LIBVIRT_COPY_MIB_S,
        sharedPools: e.VAGOTH_LIBVIRT_SHARED_POOLS.split(',').filter((p) => p !== ''),
        wipe: e.VAGOTH_LIBVIRT_WIPE,
        wipeMiBPerSecond: e.VAGOTH_LIBVIRT_WIPE_MIB_S,
        ...(e.VAGOTH_LIBVIRT_CONSOLE_DIR ? { consoleLogDir: e.VAGOTH_LIBVIRT_CONSOLE_DIR } : {}),
      },
      geats: {
        timeoutMs: e.VAGOTH_GEATS_TIMEOUT_MS,
        longTimeoutMs: e.VAGOTH_GEATS_LONG_TIMEOUT_MS,
        vmType: e.VAGOTH_GEATS_VM_TYPE,
        storageType: e.VAGOTH_GEATS_STORAGE_TYPE,
        ssh: {
          privateKeyFile: e.VAGOTH_SSH_KEY && path.resolve(e.VAGOTH_SSH_KEY),
          passphrase: e.VAGOTH_SSH_KEY_PASSPHRASE,
          knownHostsFile: path.resolve(
            e.VAGOTH_SSH_KNOWN_HOSTS ?? path.join(homedir(), '.ssh', 'known_hosts'),
          ),
          connectTimeoutMs: e.VAGOTH_SSH_CONNECT_TIMEOUT_MS,
        },
      },
    },
    images: {
      store: path.resolve(e.VAGOTH_IMAGE_STORE ?? path.join(dataDir, 'images')),
      sources: { dirs: e.VAGOTH_IMAGE_DIRS, urls: e.VAGOTH_IMAGE_URLS },
      maxBytes: e.VAGOTH_IMAGE_MAX_GIB * 1024 ** 3,
    },
    monitor: {
      intervalSeconds: e.VAGOTH_MONITOR_INTERVAL_S,
      policies: {
        ...REPORT_ONLY,
        ...e.VAGOTH_RECONCILE_POLICY,
        downAfter: e.VAGOTH_MONITOR_DOWN_AFTER,
      },
    },
  };
}
