import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../api/router.ts';
import { loadConfig } from '../config.ts';
import { CLOUD_OPTIONS } from './cloud-args.ts';
import { CLUSTER_OPTIONS } from './options.ts';
import { CLOUD_NOUNS, runCloud, unauthorizedHint } from './cloud.ts';
import { readKeyFiles, tokenFrom } from './files.ts';
import { parseNic } from './nic.ts';
import { SERVICES_OPTIONS } from './services-args.ts';
import { runServices } from './services.ts';
import { USAGE, UsageError } from './usage.ts';
import { mustHaveCompleted, untilSettled } from './wait.ts';

const parsed = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: { ...CLUSTER_OPTIONS, ...CLOUD_OPTIONS, ...SERVICES_OPTIONS },
    });
  } catch (err) {
    // An option it does not know, or one without its value: a usage error, not a crash.
    console.error(`vagoth: ${(err as Error).message} (vagoth --help for usage)`);
    process.exit(2);
  }
})();
const { values, positionals } = parsed;

const pairs = (list: string[] | undefined) =>
  Object.fromEntries((list ?? []).map((t) => t.split(/=(.*)/s).slice(0, 2)));
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** The placement options, passed as given: the API validates them and names any bad field. */
function placement() {
  return {
    ...(values.host ? { host: values.host } : {}),
    ...(values.require ? { tags: pairs(values.require) } : {}),
    ...(values['anti-affinity'] ? { antiAffinity: values['anti-affinity'] } : {}),
    ...(values.affinity ? { affinity: values.affinity } : {}),
    ...(values.policy ? { policy: values.policy as 'spread' } : {}),
  };
}

const config = loadConfig();

/** VAGOTH_TOKEN, else the admin token the first API process wrote; none: the API says so. */
const bearer = tokenFrom(config.token, config.adminTokenFile);
const api = createTRPCClient<AppRouter>({
  links: [
    httpBatchLink({
      url: config.api.url,
      headers: () => (bearer ? { authorization: `Bearer ${bearer}` } : {}),
    }),
  ],
});
const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

type OperationId = { id: string; runId: string; updateId?: string };

async function finish(op: OperationId, then?: () => Promise<unknown>) {
  if (!values.wait) return print(op);
  const { id, runId, updateId } = op;
  const detail = await untilSettled(() => api.operations.get.query({ id, runId, updateId }));
  mustHaveCompleted(detail);
  print(then ? await then() : detail);
}

function needs(n: number): string[] {
  const args = positionals.slice(2);
  if (args.length < n) throw new Error(USAGE);
  return args;
}

async function run(): Promise<void> {
  const [noun, verb] = positionals;
  if (values.help || !noun) return console.log(USAGE);
  if (CLOUD_NOUNS.has(noun)) return runCloud(values, positionals, config, process.env);
  if (noun === 'services') return runServices(values, positionals, config, process.env);
  switch (`${noun} ${verb}`) {
    case 'hosts list':
      return print(await api.hosts.list.query());
    case 'hosts get':
      return print(await api.hosts.get.query({ name: needs(1)[0]! }));
    case 'hosts register': {
      const [name, uri] = needs(2);
      // The URI says which driver, unless told: the API still checks that the two agree.
      const driver = values.driver ?? (/^geats(\+ssh)?:/.test(uri!) ? 'geats' : 'libvirt');
      return print(
        await api.hosts.register.mutate({
          name: name!,
          driver: driver as 'libvirt' | 'geats',
          uri: uri!,
          vcpus: num(values.vcpus),
          cpuRatio: num(values['cpu-ratio']),
          memoryRatio: num(values['memory-ratio']),
          diskGiB: num(values.disk),
          tags: pairs(values.tag),
        }),
      );
    }
    case 'hosts maintenance':
      return print(await api.hosts.maintenance.mutate({ name: needs(1)[0]! }));
    case 'hosts activate':
      return print(await api.hosts.activate.mutate({ name: needs(1)[0]! }));
    case 'hosts remove':
      return print(await api.hosts.remove.mutate({ name: needs(1)[0]! }));
    case 'hosts evacuate': {
      if (!values.fenced)
        throw new Error('hosts evacuate: --fenced is required (is the host off?)');
      return print(await api.hosts.evacuate.mutate({ name: needs(1)[0]!, fenced: true }));
    }
    case 'networks list':
      return print(await api.networks.list.query());
    case 'networks create': {
      const [name, cidr] = needs(2);
      const reserved = (values.reserve ?? []).map((r) => {
        const [first = '', last = first] = r.split('-');
        return { first, last };
      });
      return print(
        await api.networks.create.mutate({
          name: name!,
          cidr: cidr!,
          gateway: values.gateway,
          reserved,
          dns: values.dns ?? [],
        }),
      );
    }
    case 'images list':
      return print(await api.images.list.query());
    case 'images get':
      return print(await api.images.get.query({ name: needs(1)[0]! }));
    case 'images create': {
      const [name, source] = needs(2);
      const image = await api.images.create.mutate({
        name: name!,
        source: source!,
        ...(values.format ? { format: values.format as 'raw' } : {}),
        ...(values.sha256 ? { sha256: values.sha256 } : {}),
        ...(values.kernel
          ? {
              boot: {
                kernel: values.kernel,
                ...(values.initrd ? { initrd: values.initrd } : {}),
                ...(values.cmdline ? { cmdline: values.cmdline } : {}),
              },
            }
          : {}),
      });
      if (!values.wait || !image.operation) return print(image);
      return finish(image.operation, () => api.images.get.query({ name: name! }));
    }
    case 'images delete':
      return print(await api.images.delete.mutate({ name: needs(1)[0]! }));
    case 'placement explain': {
      const shape = {
        vcpus: Number(values.vcpus),
        memoryMiB: Number(values.memory),
        diskGiB: num(values.disk),
      };
      return print(await api.placement.explain.query({ ...shape, placement: placement() }));
    }
    case 'vms list':
      return print(await api.vms.list.query());
    case 'vms get':
      return print(await api.vms.get.query({ name: needs(1)[0]! }));
    case 'vms wipes':
      return print(await api.vms.wipes.query({ name: needs(1)[0]! }));
    case 'vms create': {
      const name = needs(1)[0]!;
      const { operation } = await api.vms.create.mutate({
        name,
        vcpus: Number(values.vcpus),
        memoryMiB: Number(values.memory),
        diskGiB: num(values.disk),
        nics: (values.nic ?? []).map((spec) => parseNic(spec)),
        tags: pairs(values.tag),
        placement: placement(),
        ...(values['keep-on-failure'] ? { onFailure: 'keep' as const } : {}),
        ...(values.image ? { image: values.image } : {}),
        disks: (values['extra-disk'] ?? []).map((gib) => ({ sizeGiB: Number(gib) })),
        // The caller's own files, read here: each key file's lines are its keys.
        sshAuthorizedKeys: readKeyFiles(values['ssh-key-file']),
        ...(values['user-data-file']
          ? { userData: readFileSync(values['user-data-file'], 'utf8') }
          : {}),
      });
      return finish(operation, () => api.vms.get.query({ name }));
    }
    case 'vms start':
    case 'vms stop':
    case 'vms reboot':
    case 'vms reprovision':
    case 'vms decommission': {
      const name = needs(1)[0]!;
      const { operation } = await api.vms[verb as 'start'].mutate({ name });
      return finish(
        operation,
        verb === 'decommission' ? undefined : () => api.vms.get.query({ name }),
      );
    }
    case 'vms shutdown': {
      const name = needs(1)[0]!;
      const { operation } = await api.vms.shutdown.mutate({
        name,
        timeoutMs: num(values.timeout),
        ...(values.force ? { force: true } : {}),
      });
      return finish(operation, () => api.vms.get.query({ name }));
    }
    case 'vms migrate': {
      const name = needs(1)[0]!;
      const { operation } = await api.vms.migrate.mutate({
        name,
        ...(values.to ? { host: values.to } : {}),
        ...(values.cold ? { live: false } : {}),
      });
      return finish(operation, () => api.vms.get.query({ name }));
    }
    case 'operations get': {
      const [id, runId] = needs(1);
      return print(
        await api.operations.get.query({
          id: id!,
          ...(runId ? { runId } : {}),
          ...(values.update ? { updateId: values.update } : {}),
        }),
      );
    }
    case 'operations retry': {
      const [name] = needs(1);
      const { operation } = await api.operations.retry.mutate({ name: name! });
      return finish(operation, () => api.vms.get.query({ name: name! }));
    }
    case 'tokens list':
      return print(
        await api.tokens.list.query({ ...(values.all ? { includeRevoked: true } : {}) }),
      );
    case 'tokens create': {
      const [name] = needs(1);
      return print(
        await api.tokens.create.mutate({
          name: name!,
          role: values.role as 'reader',
          ...(values.expires ? { expiresInSeconds: num(values.expires)! } : {}),
        }),
      );
    }
    case 'tokens revoke': {
      const [id] = needs(1);
      return print(await api.tokens.revoke.mutate({ id: id! }));
    }
    default:
      throw new Error(USAGE);
  }
}

try {
  await run();
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`vagoth: ${err.message} (vagoth --help for usage)`);
    process.exitCode = 2;
  } else {
    const code =
      err instanceof TRPCClientError
        ? ` (${(err.data as { code?: string } | undefined)?.code ?? 'error'})`
        : '';
    console.error(`vagoth: ${err instanceof Error ? err.message : String(err)}${code}`);
    if (code === ' (UNAUTHORIZED)') {
      // The service layer takes the caller's cloud token too.
      const hint = [...CLOUD_NOUNS, 'services'].includes(positionals[0]!)
        ? unauthorizedHint(config)
        : !bearer && `set VAGOTH_TOKEN, or run where ${config.adminTokenFile} is readable`;
      if (hint) console.error(`vagoth: ${hint}`);
    }
    process.exitCode = 1;
  }
}
