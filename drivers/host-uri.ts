import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { HostDriver } from '../registry/types.ts';
import { parseGeatsUri } from './geats/uri.ts';
import {
  formatLibvirtUri,
  isLocalTestUri,
  parseLibvirtUri,
  type LibvirtUri,
} from './libvirt/uri.ts';

/**
 * What the operator lets a caller of hosts.register make this machine open or run: a host's
 * URI is the caller's, the programs and files it reaches are not. Empty lists allow nothing.
 */
export interface HostUriPolicy {
  /** Local geats agents: absolute paths of agents, or of directories agents may lie under. */
  geatsAgents: readonly string[];
  /** libvirt's test driver (`test://` URIs): hosts simulated in the worker's memory. */
  simulatedHosts: boolean;
  /** Directories a simulated host's file (`test:///<file>`) may lie under. */
  simulatedHostDirs: readonly string[];
  /** Directories the socket of a libvirt URI's `socket=` may lie under. */
  libvirtSocketDirs: readonly string[];
}

/** Nothing beyond remote hypervisors and this machine's own libvirt daemons. */
export const CLOSED_HOST_URIS: HostUriPolicy = {
  geatsAgents: [],
  simulatedHosts: false,
  simulatedHostDirs: [],
  libvirtSocketDirs: [],
};

/** A URI the policy refuses; the message says why, in vagoth's words. */
export class HostUriError extends Error {
  override name = 'HostUriError';
}

const within = (dirs: readonly string[], file: string) =>
  dirs.some((d) => file === d || file.startsWith(d.endsWith('/') ? d : `${d}/`));

function libvirtChecks(uri: string, policy: HostUriPolicy): LibvirtUri {
  let u: LibvirtUri;
  try {
    u = parseLibvirtUri(uri);
  } catch (err) {
    throw new HostUriError((err as Error).message);
  }
  if (u.driver === 'test' && !policy.simulatedHosts) {
    throw new HostUriError(
      'simulated hosts (test:// URIs) are not enabled here (VAGOTH_ALLOW_SIMULATED_HOSTS)',
    );
  }
  if (isLocalTestUri(u) && u.path !== '/default' && !within(policy.simulatedHostDirs, u.path)) {
    throw new HostUriError('a simulated host is a file vagoth wrote, under its data directory');
  }
  const socket = u.params.get('socket');
  if (socket !== undefined && !within(policy.libvirtSocketDirs, path.posix.normalize(socket))) {
    throw new HostUriError('socket= must lie under a directory of VAGOTH_LIBVIRT_SOCKET_DIRS');
  }
  return u;
}

function agentChecks(uri: string, policy: HostUriPolicy) {
  let g;
  try {
    g = parseGeatsUri(uri);
  } catch (err) {
    throw new HostUriError((err as Error).message);
  }
  if (g.transport === 'local' && !within(policy.geatsAgents, g.agent)) {
    throw new HostUriError(
      'a local geats agent must be one the operator allows (VAGOTH_GEATS_AGENTS)',
    );
  }
  return g;
}

/**
 * Checks a host's URI against the policy from its text alone: fast, opens nothing, runs
 * nothing (the API's check). Throws HostUriError.
 */
export function checkHostUri(driver: HostDriver, uri: string, policy: HostUriPolicy): void {
  if (driver === 'libvirt') libvirtChecks(uri, policy);
  else agentChecks(uri, policy);
}

/** The real path of `file`, or null when it is not there. */
async function real(file: string): Promise<string | null> {
  return realpath(file).catch(() => null);
}

async function realDirs(dirs: readonly string[]): Promise<string[]> {
  return (await Promise.all(dirs.map(real))).filter((d): d is string => d !== null);
}

/** The real path of a file the policy allows, symlinks and all resolved; else HostUriError. */
async function admitFile(file: string, dirs: readonly string[], why: string): Promise<string> {
  const resolved = await real(file);
  if (resolved === null || !within(await realDirs(dirs), resolved)) throw new HostUriError(why);
  return resolved;
}

/**
 * The worker's check before it opens or runs anything for a libvirt URI: the text rules,
 * then every path it names resolved (symlinks, `..`) and still inside the allowed
 * directories. Answers the URI's canonical spelling, with those real paths.
 */
export async function admitLibvirtUri(uri: string, policy: HostUriPolicy): Promise<string> {
  const u = libvirtChecks(uri, policy);
  const socket = u.params.get('socket');
  if (socket !== undefined) {
    const real = await admitFile(
      socket,
      policy.libvirtSocketDirs,
      'socket= must lie under a directory of VAGOTH_LIBVIRT_SOCKET_DIRS',
    );
    u.params.set('socket', real);
  }
  if (isLocalTestUri(u) && u.path !== '/default') {
    const real = await admitFile(
      u.path,
      policy.simulatedHostDirs,
      'a simulated host is a file vagoth wrote, under its data directory',
    );
    return formatLibvirtUri(u, real);
  }
  return formatLibvirtUri(u);
}

/**
 * The worker's check before it runs a local geats agent: the agent's real path (the file
 * that will run), inside what the operator allows. Throws HostUriError.
 */
export async function admitGeatsAgent(agent: string, allowed: readonly string[]): Promise<string> {
  return admitFile(
    agent,
    allowed,
    'a local geats agent must be one the operator allows (VAGOTH_GEATS_AGENTS)',
  );
}
