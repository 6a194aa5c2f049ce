import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The stand-in geats agent (plain Node): see its header for the state it keeps. */
export const STAND_IN_AGENT = fileURLToPath(new URL('../support/geats-agent.mjs', import.meta.url));

export interface GeatsHostOptions {
  memoryMiB?: number;
  /** The vm_types its geats.conf would offer. */
  vmTypes?: string[];
  /** Answer migrations as live ones. */
  liveMigration?: boolean;
  /** False: its geats cannot migrate (NotImplementedError, geats's default). */
  migration?: boolean;
  loadAvg?: [number, number, number];
}

/** An answer the stand-in gives instead of doing the work (see geats-agent.mjs). */
export interface GeatsFault {
  action: string;
  vm?: string;
  mode: 'error' | 'crash' | 'garbage' | 'answer' | 'hang' | 'ignore';
  errorcode?: string;
  /** For `answer`: the document the agent prints. */
  answer?: unknown;
  message?: string;
  exitCode?: number;
  times?: number;
}

export interface GeatsHostState {
  host: Record<string, unknown>;
  vms: Record<string, { definition: Record<string, unknown>; state: [string, string] }>;
  /** `data`: what a guest wrote there (writeToVolume), to tell a used volume from a fresh one. */
  volumes: Record<string, { vm: string; template: string | null; data?: string }>;
}

export interface GeatsTestHost {
  name: string;
  dir: string;
  /** The executable a driver runs: a script that starts the stand-in on this host's state. */
  agent: string;
  /** `geats:///<agent>`. */
  uri: string;
  state(): Promise<GeatsHostState>;
  setFaults(faults: GeatsFault[]): Promise<void>;
  /** One entry per request the agent received. */
  calls(): Promise<{ pid: number; action: string; vm: string | null }[]>;
  /** PIDs of agents that hung (and were told to never answer). */
  hungAgents(): Promise<number[]>;
  /** A VM some other tool defined on the host: no vagoth marker. */
  defineForeign(vmName: string): Promise<void>;
  /** What a guest would do: leave `data` on one of the host's volumes. */
  writeToVolume(volume: string, data: string): Promise<void>;
}

const readJson = async <T>(file: string, fallback: T): Promise<T> => {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw err;
  }
};

/**
 * A geats host for tests: a directory `<root>/<name>` with the host's state, and an agent
 * script there. Hosts under one root are each other's migration peers, by name.
 */
export async function writeGeatsHost(
  root: string,
  name: string,
  options: GeatsHostOptions = {},
): Promise<GeatsTestHost> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const agent = path.join(dir, 'geats-agent');
  await writeFile(agent, `#!/bin/sh\nexec '${process.execPath}' '${STAND_IN_AGENT}' '${dir}'\n`);
  await chmod(agent, 0o755);
  const stateFile = path.join(dir, 'host.json');
  const state: GeatsHostState = {
    host: {
      mem_total: (options.memoryMiB ?? 16384) * 1024,
      vm_types: options.vmTypes ?? ['kvm', 'lxc'],
      peers: {},
      live_migration: options.liveMigration ?? false,
      migration: options.migration ?? true,
      load_avg: options.loadAvg ?? [0.5, 0.25, 0.1],
    },
    vms: {},
    volumes: {},
  };
  await writeFile(stateFile, JSON.stringify(state));
  return {
    name,
    dir,
    agent,
    uri: `geats://${agent}`,
    state: () => readJson(stateFile, state),
    setFaults: (faults) => writeFile(path.join(dir, 'faults.json'), JSON.stringify(faults)),
    async calls() {
      const log = await readFile(path.join(dir, 'calls.log'), 'utf8').catch(() => '');
      return log
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { pid: number; action: string; vm: string | null });
    },
    async hungAgents() {
      return (await readdir(dir)).flatMap((f) =>
        f.startsWith('hung-') ? [Number(f.slice(5))] : [],
      );
    },
    async defineForeign(vmName) {
      const now = await readJson(stateFile, state);
      now.vms[vmName] = {
        definition: { name: vmName, vm_type: 'lxc', ram: 256, network: [] },
        state: ['running', 'running'],
      };
      await writeFile(stateFile, JSON.stringify(now));
    },
    async writeToVolume(volume, data) {
      const now = await readJson(stateFile, state);
      const held = now.volumes[volume];
      if (!held) throw new Error(`${name} holds no volume ${volume}`);
      held.data = data;
      await writeFile(stateFile, JSON.stringify(now));
    },
  };
}
