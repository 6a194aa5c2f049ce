import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.ts';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has a default for everything a local run needs', () => {
    expect(loadConfig({})).toEqual({
      api: {
        host: '127.0.0.1',
        port: 7780,
        url: 'http://127.0.0.1:7780/trpc',
        maxBodyBytes: 1024 * 1024,
        maxBatchSize: 10,
        tokenCacheMs: 5_000,
      },
      token: undefined,
      adminTokenFile: path.resolve('.vagoth', 'admin-token'),
      cloud: {
        enabled: false,
        adminTokenFile: path.resolve('.vagoth', 'cloud-admin-token'),
        clusterUrls: [],
        clusterTimeoutMs: 10_000,
        reconcileMs: 60_000,
      },
      services: { cloudUrl: undefined, clouds: {}, probe: { cidrs: [], timeoutMs: 2_000 } },
      temporal: {
        address: undefined,
        namespace: 'default',
        taskQueue: 'vagoth',
        uiUrl: 'http://localhost:8233',
        cli: path.resolve('.tools/bin/temporal'),
        devPort: 7233,
        devUiPort: 8233,
      },
      databaseUrl: undefined,
      dataDir: path.resolve('.vagoth'),
      embeddedPostgresPort: 5433,
      simulatedHosts: 3,
      logLevel: 'WARN',
      workflowThreads: Math.min(4, availableParallelism()),
      placementPolicy: 'spread',
      drivers: {
        // Closed by default: no local agent, no simulated host, no socket a caller names.
        hostUris: {
          geatsAgents: [],
          simulatedHosts: false,
          simulatedHostDirs: [path.resolve('.vagoth')],
          libvirtSocketDirs: [],
        },
        libvirt: {
          pools: ['vagoth'],
          sharedPools: [],
          domainType: 'kvm',
          copyMiBPerSecond: 0,
          wipe: 'stream',
          wipeMiBPerSecond: 0,
        },
        geats: {
          timeoutMs: 15_000,
          longTimeoutMs: 600_000,
          vmType: 'kvm',
          storageType: 'local',
          ssh: {
            privateKeyFile: undefined,
            passphrase: undefined,
            knownHostsFile: path.join(homedir(), '.ssh', 'known_hosts'),
            connectTimeoutMs: 10_000,
          },
        },
      },
      images: {
        store: path.resolve('.vagoth', 'images'),
        sources: { dirs: [], urls: [] },
        maxBytes: 256 * 1024 ** 3,
      },
      monitor: {
        intervalSeconds: 30,
        policies: {
          missing: 'report',
          unknownOurs: 'report',
          unknownForeign: 'report',
          misplaced: 'report',
          drifted: 'report',
          downAfter: 3,
        },
      },
    });
  });

  it('takes every variable that is set', () => {
    const config = loadConfig({
      VAGOTH_API_PORT: '8080',
      VAGOTH_API_HOST: '0.0.0.0',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'vagoth-prod',
      VAGOTH_TASK_QUEUE: 'vagoth-eu',
      VAGOTH_TEMPORAL_UI_URL: 'https://temporal.example.com/',
      DATABASE_URL: 'postgresql://vagoth@db:5432/vagoth',
      VAGOTH_DATA_DIR: '/var/lib/vagoth',
      VAGOTH_SIMULATED_HOSTS: '0',
      VAGOTH_TEMPORAL_CLI: '/usr/local/bin/temporal',
      VAGOTH_TEMPORAL_PORT: '17233',
      VAGOTH_TEMPORAL_UI_PORT: '18233',
      VAGOTH_POSTGRES_PORT: '15433',
      VAGOTH_LOG_LEVEL: 'DEBUG',
      VAGOTH_WORKFLOW_THREADS: '3',
      VAGOTH_PLACEMENT_POLICY: 'pack',
      VAGOTH_API_URL: 'https://vagoth.example.com/trpc',
      VAGOTH_API_MAX_BODY_BYTES: '65536',
      VAGOTH_API_MAX_BATCH: '4',
      VAGOTH_TOKEN_CACHE_MS: '1000',
      VAGOTH_TOKEN: 'vgt_abc',
      VAGOTH_LIBVIRT_POOLS: 'vagoth,fast-ssd',
      VAGOTH_SSH_KEY: '/etc/vagoth/id_ed25519',
      VAGOTH_SSH_KEY_PASSPHRASE: 'secret',
      VAGOTH_SSH_KNOWN_HOSTS: '/etc/vagoth/known_hosts',
      VAGOTH_SSH_CONNECT_TIMEOUT_MS: '5000',
      VAGOTH_GEATS_TIMEOUT_MS: '20000',
      VAGOTH_GEATS_LONG_TIMEOUT_MS: '1200000',
      VAGOTH_GEATS_VM_TYPE: 'lxc',
      VAGOTH_GEATS_STORAGE_TYPE: 'lvm',
      VAGOTH_MONITOR_INTERVAL_S: '10',
      VAGOTH_MONITOR_DOWN_AFTER: '5',
      VAGOTH_RECONCILE_POLICY:
        'missing=unassign, unknownOurs=power-off,unknownForeign=power-off,misplaced=adopt,drifted=adopt',
      VAGOTH_ALLOW_SIMULATED_HOSTS: 'true',
      VAGOTH_SIMULATED_HOST_DIRS: '/srv/sim',
      VAGOTH_GEATS_AGENTS: '/usr/bin/geats-agent, /opt/geats/bin/',
      VAGOTH_LIBVIRT_SOCKET_DIRS: '/run/libvirt-private',
      VAGOTH_LIBVIRT_SHARED_POOLS: 'fast-ssd',
      VAGOTH_LIBVIRT_DOMAIN_TYPE: 'qemu',
      VAGOTH_LIBVIRT_COPY_MIB_S: '200',
      VAGOTH_IMAGE_DIRS: '/srv/images, /mnt/nfs/images/',
      VAGOTH_IMAGE_URLS: 'https://cloud.debian.org/images/, http://mirror.internal',
      VAGOTH_IMAGE_STORE: '/srv/vagoth/images',
      VAGOTH_IMAGE_MAX_GIB: '64',
      VAGOTH_CLOUD: 'true',
      VAGOTH_CLOUD_CLUSTER_URLS: 'https://eu.vagoth.example/trpc',
      VAGOTH_CLOUD_CLUSTER_TIMEOUT_MS: '3000',
      VAGOTH_SERVICES_CLOUD_URL: 'http://cloud.example:3000/cloud/trpc',
      VAGOTH_SERVICES_PROBE_CIDRS: '192.0.2.0/24',
      VAGOTH_SERVICES_PROBE_TIMEOUT_MS: '1500',
      VAGOTH_SERVICES_CLOUDS:
        'east=https://east.example/cloud/trpc, west=http://10.0.0.2:3000/cloud/trpc',
    });
    expect(config).toEqual({
      api: {
        host: '0.0.0.0',
        port: 8080,
        url: 'https://vagoth.example.com/trpc',
        maxBodyBytes: 65536,
        maxBatchSize: 4,
        tokenCacheMs: 1000,
      },
      token: 'vgt_abc',
      adminTokenFile: '/var/lib/vagoth/admin-token',
      cloud: {
        enabled: true,
        adminTokenFile: '/var/lib/vagoth/cloud-admin-token',
        clusterUrls: ['https://eu.vagoth.example/trpc'],
        clusterTimeoutMs: 3000,
        reconcileMs: 60_000,
      },
      services: {
        cloudUrl: 'http://cloud.example:3000/cloud/trpc',
        clouds: {
          east: 'https://east.example/cloud/trpc',
          west: 'http://10.0.0.2:3000/cloud/trpc',
        },
        probe: { cidrs: ['192.0.2.0/24'], timeoutMs: 1500 },
      },
      temporal: {
        address: 'temporal.internal:7233',
        namespace: 'vagoth-prod',
        taskQueue: 'vagoth-eu',
        // The trailing slash goes, so operation links can append a path.
        uiUrl: 'https://temporal.example.com',
        cli: '/usr/local/bin/temporal',
        devPort: 17233,
        devUiPort: 18233,
      },
      databaseUrl: 'postgresql://vagoth@db:5432/vagoth',
      dataDir: '/var/lib/vagoth',
      embeddedPostgresPort: 15433,
      simulatedHosts: 0,
      logLevel: 'DEBUG',
      workflowThreads: 3,
      placementPolicy: 'pack',
      drivers: {
        hostUris: {
          geatsAgents: ['/usr/bin/geats-agent', '/opt/geats/bin'],
          simulatedHosts: true,
          simulatedHostDirs: ['/var/lib/vagoth', '/srv/sim'],
          libvirtSocketDirs: ['/run/libvirt-private'],
        },
        libvirt: {
          pools: ['vagoth', 'fast-ssd'],
          sharedPools: ['fast-ssd'],
          domainType: 'qemu',
          copyMiBPerSecond: 200,
          wipe: 'stream',
          wipeMiBPerSecond: 0,
        },
        geats: {
          timeoutMs: 20_000,
          longTimeoutMs: 1_200_000,
          vmType: 'lxc',
          storageType: 'lvm',
          ssh: {
            privateKeyFile: '/etc/vagoth/id_ed25519',
            passphrase: 'secret',
            knownHostsFile: '/etc/vagoth/known_hosts',
            connectTimeoutMs: 5000,
          },
        },
      },
      images: {
        store: '/srv/vagoth/images',
        sources: {
          dirs: ['/srv/images', '/mnt/nfs/images'],
          // As URLs parse them: a bare origin gains its slash.
          urls: ['https://cloud.debian.org/images/', 'http://mirror.internal/'],
        },
        maxBytes: 64 * 1024 ** 3,
      },
      monitor: {
        intervalSeconds: 10,
        policies: {
          missing: 'unassign',
          unknownOurs: 'power-off',
          unknownForeign: 'power-off',
          misplaced: 'adopt',
          drifted: 'adopt',
          downAfter: 5,
        },
      },
    });
  });

  it('derives the default UI link from the dev UI port', () => {
    expect(loadConfig({ VAGOTH_TEMPORAL_UI_PORT: '9000' }).temporal.uiUrl).toBe(
      'http://localhost:9000',
    );
  });

  it.each([
    ['VAGOTH_API_PORT', 'abc'],
    ['VAGOTH_API_PORT', '0'],
    ['VAGOTH_API_PORT', '65536'],
    ['VAGOTH_API_PORT', '80.5'],
    ['TEMPORAL_ADDRESS', 'nope'],
    ['TEMPORAL_ADDRESS', 'temporal:port'],
    ['DATABASE_URL', 'mysql://x'],
    ['VAGOTH_TEMPORAL_UI_URL', 'not a url'],
    ['VAGOTH_SIMULATED_HOSTS', '17'],
    ['VAGOTH_SIMULATED_HOSTS', '-1'],
    ['TEMPORAL_NAMESPACE', ''],
    ['VAGOTH_LOG_LEVEL', 'debug'],
    ['VAGOTH_WORKFLOW_THREADS', '0'],
    ['VAGOTH_WORKFLOW_THREADS', 'many'],
    ['VAGOTH_LIBVIRT_POOLS', 'vagoth,,other'],
    ['VAGOTH_IMAGE_DIRS', 'images'],
    ['VAGOTH_IMAGE_URLS', 'ftp://mirror/images/'],
    ['VAGOTH_IMAGE_URLS', 'not a url'],
    ['VAGOTH_IMAGE_MAX_GIB', '0'],
    ['VAGOTH_LIBVIRT_POOLS', '../etc'],
    ['VAGOTH_GEATS_TIMEOUT_MS', '10'],
    ['VAGOTH_GEATS_VM_TYPE', 'kvm; rm -rf /'],
    ['VAGOTH_MONITOR_INTERVAL_S', '0'],
    ['VAGOTH_MONITOR_INTERVAL_S', '1.5'],
    ['VAGOTH_MONITOR_DOWN_AFTER', '0'],
    ['VAGOTH_RECONCILE_POLICY', 'missing=power-off'],
    ['VAGOTH_RECONCILE_POLICY', 'orphans=report'],
    ['VAGOTH_RECONCILE_POLICY', 'drifted'],
  ])('refuses %s=%j, naming it', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('lists every bad variable in one error', () => {
    const error = configError({
      VAGOTH_API_PORT: 'abc',
      TEMPORAL_ADDRESS: 'nope',
      DATABASE_URL: 'mysql://x',
      VAGOTH_API_HOST: 'fine.example.com',
    });
    expect(error.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'VAGOTH_API_PORT',
    ]);
    for (const name of ['VAGOTH_API_PORT', 'TEMPORAL_ADDRESS', 'DATABASE_URL'])
      expect(error.message).toContain(name);
    expect(error.message).toContain('must be host:port');
    expect(error.message).toContain('must be a postgres:// URL');
  });

  it('keeps report for every kind the reconcile policy leaves out', () => {
    expect(
      loadConfig({ VAGOTH_RECONCILE_POLICY: 'unknownOurs=power-off' }).monitor.policies,
    ).toEqual({
      missing: 'report',
      unknownOurs: 'power-off',
      unknownForeign: 'report',
      misplaced: 'report',
      drifted: 'report',
      downAfter: 3,
    });
  });

  it('names the reconcile policy’s bad kind and the choices it has', () => {
    expect(configError({ VAGOTH_RECONCILE_POLICY: 'missing=adopt' }).problems).toEqual([
      'VAGOTH_RECONCILE_POLICY: missing must be report or unassign, not "adopt"',
    ]);
  });

  it('refuses relative agent paths and a switch that is not a boolean', () => {
    const error = configError({
      VAGOTH_GEATS_AGENTS: 'bin/agent',
      VAGOTH_ALLOW_SIMULATED_HOSTS: 'yes',
      VAGOTH_LIBVIRT_SOCKET_DIRS: '/ok,relative',
    });
    expect(error.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'VAGOTH_ALLOW_SIMULATED_HOSTS',
      'VAGOTH_GEATS_AGENTS',
      'VAGOTH_LIBVIRT_SOCKET_DIRS',
    ]);
  });

  it('lets npm start turn simulated hosts on unless the environment says otherwise', () => {
    const embedded = { VAGOTH_ALLOW_SIMULATED_HOSTS: 'true' };
    expect(loadConfig({}, embedded).drivers.hostUris.simulatedHosts).toBe(true);
    const off = loadConfig({ VAGOTH_ALLOW_SIMULATED_HOSTS: 'false' }, embedded);
    expect(off.drivers.hostUris.simulatedHosts).toBe(false);
  });

  it('takes other clouds by name and refuses a bad name, a URL that is not http(s), a name twice', () => {
    expect(
      loadConfig({ VAGOTH_SERVICES_CLOUDS: 'constructor=http://c.example/cloud/trpc' }).services
        .clouds,
    ).toEqual({ constructor: 'http://c.example/cloud/trpc' });
    for (const [value, why] of [
      ['East=http://e.example/', 'must be a cloud name'],
      ['http://e.example/cloud/trpc', 'must be a cloud name'],
      ['../x=http://e.example/', 'must be a cloud name'],
      ['__proto__=http://e.example/', 'must be a cloud name'],
      ['east', "east's URL must be an http(s) URL"],
      ['east=', "east's URL must be an http(s) URL"],
      ['east=file:///etc/passwd', "east's URL must be an http(s) URL"],
      ['east=javascript:alert(1)', "east's URL must be an http(s) URL"],
      ['east=e.example/cloud/trpc', "east's URL must be an http(s) URL"],
      ['east=http://a.example/,east=http://b.example/', 'names cloud east twice'],
    ] as const) {
      const { problems } = configError({ VAGOTH_SERVICES_CLOUDS: value });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^VAGOTH_SERVICES_CLOUDS: /);
      expect(problems[0]).toContain(why);
    }
  });

  it('ignores variables it does not know', () => {
    expect(loadConfig({ PATH: '/usr/bin', VAGOTH_UNKNOWN: 'x' }).api.port).toBe(7780);
  });
});
