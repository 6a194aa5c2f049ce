import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../api/router.ts';
import { loadConfig } from '../config.ts';
import { parseNic } from './nic.ts';

const USAGE = `usage: vagoth <command>

  hosts list
  hosts get <name>
  hosts register <name> <uri> [--vcpus N] [--driver libvirt|geats] [--cpu-ratio R]
                 [--memory-ratio R] [--disk GiB] [--tag k=v]...
      uri: a libvirt URI, geats:///path/to/agent or geats+ssh://user@host[:port]/path/to/agent;
      a geats host reports no CPU count, so it needs --vcpus
  hosts maintenance|activate|remove <name>
      maintenance: no new placements, and its VMs migrate away (prints what moved and what stayed)
  hosts evacuate <name> --fenced
      restarts a dead host's VMs elsewhere on fresh volumes; --fenced confirms the host is off
  networks list
  networks create <name> <cidr> [--gateway A.B.C.D] [--reserve FIRST-LAST]... [--dns A.B.C.D]...
  images list
  images get <name>
  images create <name> <source> [--format raw|qcow2] [--sha256 HEX]
                [--kernel IMAGE [--initrd IMAGE] [--cmdline LINE]] [--wait]
      source: a file under $VAGOTH_IMAGE_DIRS or a URL under $VAGOTH_IMAGE_URLS; the import
      checks the digest (if given) and the format (qcow2 or raw) and reports bytes read
  images delete <name>
  vms list
  vms get <name>
  vms wipes <name>
      how its volumes were wiped and checked (a decommissioned VM by its last name)
  vms create <name> --vcpus N --memory MiB [--disk GiB] [--nic network[,ip=A.B.C.D][,mac=M]]...
             [--image NAME] [--extra-disk GiB]... [--ssh-key-file FILE]... [--user-data-file FILE]
             [--tag k=v]... [PLACEMENT] [--keep-on-failure] [--wait]
  vms start|stop|reboot|reprovision|decommission <name> [--wait]
  vms shutdown <name> [--timeout MS] [--force] [--wait]
  vms migrate <name> [--to HOST] [--cold] [--wait]
  placement explain --vcpus N --memory MiB [--disk GiB] [PLACEMENT]
  operations get <id> [<run-id>] [--update ID]
  operations retry <vm-name> [--wait]
      runs the VM's last operation again, with its input, if it failed
  tokens list [--all]
  tokens create <name> --role admin|operator|reader [--expires SECONDS]
      prints the token once: it is stored only as a hash
  tokens revoke <id>

PLACEMENT: [--host H] [--require k=v]... [--anti-affinity G]... [--affinity G]... [--policy spread|pack]

The API is at $VAGOTH_API_URL (default http://127.0.0.1:7780/trpc). Every call carries the
token in $VAGOTH_TOKEN, else the admin token vagoth wrote to $VAGOTH_DATA_DIR/admin-token.`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    vcpus: { type: 'string' },
    fenced: { type: 'boolean' },
    memory: { type: 'string' },
    nic: { type: 'string', multiple: true },
    tag: { type: 'string', multiple: true },
    host: { type: 'string' },
    disk: { type: 'string' },
    require: { type: 'string', multiple: true },
    'anti-affinity': { type: 'string', multiple: true },
    affinity: { type: 'string', multiple: true },
    policy: { type: 'string' },
    driver: { type: 'string' },
    'cpu-ratio': { type: 'string' },
    'memory-ratio': { type: 'string' },
    gateway: { type: 'string' },
    reserve: { type: 'string', multiple: true },
    dns: { type: 'string', multiple: true },
    wait: { type: 'boolean' },
    'keep-on-failure': { type: 'boolean' },
    timeout: { type: 'string' },
    force: { type: 'boolean' },
    to: { type: 'string' },
    cold: { type: 'boolean' },
    update: { type: 'string' },
    format: { type: 'string' },
    sha256: { type: 'string' },
    image: { type: 'string' },
    'extra-disk': { type: 'string', multiple: true },
    'ssh-key-file': { type: 'string', multiple: true },
    'user-data-file': { type: 'string' },
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    cmdline: { type: 'string' },
    role: { type: 'string' },
    expires: { type: 'string' },
    all: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

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
function token(): string | undefined {
  if (config.token) return config.token;
  try {
    return readFileSync(config.adminTokenFile, 'utf8').trim() || undefined;
  } catch {
    return undefined; // no file: the call goes without, and is refused as unauthorised
  }
}

const bearer = token();
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

async function waitFor(op: OperationId) {
  for (;;) {
    const { id, runId, updateId } = op;
    const detail = await api.operations.get.query({ id, runId, updateId });
    if (detail.status !== 'running' && detail.status !== 'queued') return detail;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function finish(op: OperationId, then?: () => Promise<unknown>) {
  if (!values.wait) return print(op);
  const detail = await waitFor(op);
  if (detail.status !== 'completed')
    throw new Error(`${detail.kind} ${detail.status}: ${detail.error?.message ?? ''}`);
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
        nics: (values.nic ?? []).map(parseNic),
        tags: pairs(values.tag),
        placement: placement(),
        ...(values['keep-on-failure'] ? { onFailure: 'keep' as const } : {}),
        ...(values.image ? { image: values.image } : {}),
        disks: (values['extra-disk'] ?? []).map((gib) => ({ sizeGiB: Number(gib) })),
        // The caller's own files, read here: each key file's lines are its keys.
        sshAuthorizedKeys: (values['ssh-key-file'] ?? []).flatMap((file) =>
          readFileSync(file, 'utf8')
            .split('\n')
            .map((line) => line.trim())
            .filter((line) => line !== '' && !line.startsWith('#')),
        ),
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
  const code =
    err instanceof TRPCClientError
      ? ` (${(err.data as { code?: string } | undefined)?.code ?? 'error'})`
      : '';
  console.error(`vagoth: ${err instanceof Error ? err.message : String(err)}${code}`);
  if (code === ' (UNAUTHORIZED)' && !bearer)
    console.error(`vagoth: set VAGOTH_TOKEN, or run where ${config.adminTokenFile} is readable`);
  process.exitCode = 1;
}
