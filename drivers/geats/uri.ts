/** Where a geats host's agent runs: on this machine, or on the host over SSH. */
export type GeatsUri =
  | { transport: 'local'; agent: string }
  | { transport: 'ssh'; user: string; host: string; port: number; agent: string };

export class GeatsUriError extends Error {
  override name = 'GeatsUriError';
}

// The agent path is run as an SSH command line, so it is kept to characters no shell treats
// specially: nothing in it needs quoting and nothing can be injected.
const AGENT = /^\/[A-Za-z0-9._+-][A-Za-z0-9._+/-]*$/;
const SSH =
  /^geats\+ssh:\/\/([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d+))?(\/.*)?$/;

function agentPath(path: string | undefined, uri: string): string {
  if (!path || !AGENT.test(path) || path.endsWith('/') || path.split('/').includes('..')) {
    throw new GeatsUriError(
      `${uri}: the agent must be an absolute path of letters, digits and . _ + - / (like /usr/bin/geats-agent)`,
    );
  }
  return path;
}

/** Parses `geats:///path/to/agent` or `geats+ssh://user@host[:port]/path/to/agent`. */
export function parseGeatsUri(uri: string): GeatsUri {
  if (uri.startsWith('geats://')) {
    if (!uri.startsWith('geats:///'))
      throw new GeatsUriError(
        `${uri}: a local agent is geats:///absolute/path; use geats+ssh://user@host/path for a remote one`,
      );
    return { transport: 'local', agent: agentPath(uri.slice('geats://'.length), uri) };
  }
  if (uri.startsWith('geats+ssh://')) {
    const m = SSH.exec(uri);
    if (!m) throw new GeatsUriError(`${uri}: must be geats+ssh://user@host[:port]/path/to/agent`);
    const port = m[3] === undefined ? 22 : Number(m[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new GeatsUriError(`${uri}: the port must be 1-65535`);
    const host = m[2]!.replace(/^\[(.*)\]$/, '$1');
    return { transport: 'ssh', user: m[1]!, host, port, agent: agentPath(m[4], uri) };
  }
  throw new GeatsUriError(
    `${uri}: must be geats:///path/to/agent or geats+ssh://user@host[:port]/path/to/agent`,
  );
}

export function isGeatsUri(uri: string): boolean {
  return uri.startsWith('geats://') || uri.startsWith('geats+ssh://');
}
