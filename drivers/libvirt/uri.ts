/**
 * A libvirt URI as vagoth accepts it. libvirt acts on more than the hypervisor's address: the
 * `ext` transport and the `command`/`netcat` parameters run programs, `keyfile`, `pkipath`,
 * `known_hosts` and `socket` name files on this machine, `no_verify` skips the host's
 * certificate, and a `test:///<file>` URI makes libvirt read that file. So a URI is parsed
 * here, by libvirt's own rules where they matter (parameters split on `&` and `;`, names
 * compared without case, values percent-decoded), and only a known-safe subset passes.
 */
export interface LibvirtUri {
  /** `qemu` or `test`. */
  driver: string;
  /** `unix`, `ssh`, `libssh`, `libssh2`, `tls`, `tcp`; null for libvirt's default. */
  transport: string | null;
  user: string | null;
  /** Lower case; null for this machine. */
  host: string | null;
  port: number | null;
  path: string;
  /** By lower-case name, decoded. */
  params: Map<string, string>;
}

export class LibvirtUriError extends Error {
  override name = 'LibvirtUriError';
}

const DRIVERS = ['qemu', 'test'];
const TRANSPORTS = ['unix', 'ssh', 'libssh', 'libssh2', 'tls', 'tcp'];

/** Why a parameter vagoth knows is refused. */
const REFUSED_PARAMS: Record<string, string> = {
  command: 'runs a program on this machine',
  netcat: 'runs a program of the caller\u2019s choosing',
  no_verify: 'skips verifying the host\u2019s certificate',
  keyfile: 'names a file on this machine',
  pkipath: 'names a directory on this machine',
  known_hosts: 'names a file on this machine',
  no_tty: 'is for interactive use',
  name: 'makes the daemon open another URI',
};

/** The parameters passed on, each with the values it may take (null: any plain value). */
const ALLOWED_PARAMS: Record<string, RegExp | null> = {
  socket: null, // a path: checked against the operator's socket directories (HostUriPolicy)
  mode: /^(auto|legacy|direct)$/,
  proxy: /^(auto|netcat|native)$/,
  sshauth:
    /^(agent|privkey|password|keyboard-interactive)(,(agent|privkey|password|keyboard-interactive))*$/,
  tls_priority: /^[A-Za-z0-9:+!%._-]{1,200}$/,
  known_hosts_verify: /^normal$/,
};

const SHAPE =
  /^([A-Za-z][A-Za-z0-9]*)(?:\+([A-Za-z0-9]+))?:\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(?:\?([^#]*))?$/;
const HOST = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;
const USER = /^[A-Za-z0-9._-]{1,64}$/;
const PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

function fail(why: string): never {
  throw new LibvirtUriError(why);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail('has a malformed %-escape');
  }
}

function parseParams(query: string | undefined): Map<string, string> {
  const params = new Map<string, string>();
  // libvirt splits on both separators, so `a=1;command=...` is two parameters to it.
  for (const part of (query ?? '').split(/[&;]/)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = decode(eq < 0 ? '' : part.slice(eq + 1));
    if (params.has(name)) fail(`gives the parameter ${name} twice`);
    const refused = Object.hasOwn(REFUSED_PARAMS, name) ? REFUSED_PARAMS[name] : undefined;
    if (refused) fail(`the parameter ${name} ${refused}`);
    if (!Object.hasOwn(ALLOWED_PARAMS, name)) {
      fail(
        `the parameter ${JSON.stringify(name.slice(0, 40))} is not one vagoth passes to libvirt (${Object.keys(ALLOWED_PARAMS).join(', ')})`,
      );
    }
    const rule = ALLOWED_PARAMS[name];
    if (rule ? !rule.test(value) : !/^\/\S*$/.test(value)) {
      fail(
        name === 'known_hosts_verify'
          ? 'known_hosts_verify other than normal skips checking the host\u2019s key'
          : `the parameter ${name} has a value vagoth does not pass on`,
      );
    }
    params.set(name, value);
  }
  return params;
}

/** Parses a libvirt URI; throws LibvirtUriError saying why one is refused. */
export function parseLibvirtUri(uri: string): LibvirtUri {
  const m = SHAPE.exec(uri);
  if (!m || /[\s\0]/.test(uri)) {
    fail('must be a libvirt URI such as qemu:///system or qemu+ssh://root@hv1/system');
  }
  const [, driverText = '', transportText, userText, hostText = '', pathText = '', query] = m;
  const driver = driverText.toLowerCase();
  const transport = transportText?.toLowerCase() ?? null;
  if (!DRIVERS.includes(driver)) {
    fail(
      `the driver ${JSON.stringify(driver)} is not one vagoth drives (qemu, or test for simulated hosts)`,
    );
  }
  if (transport === 'ext') fail('the ext transport runs a program on this machine');
  if (transport !== null && !TRANSPORTS.includes(transport)) {
    fail(`the transport ${JSON.stringify(transport)} is not one of ${TRANSPORTS.join(', ')}`);
  }
  if (userText !== undefined && !USER.test(userText)) {
    fail('the user must be letters, digits and . _ - (no password in a URI)');
  }
  let host: string | null = null;
  let port: number | null = null;
  if (hostText !== '') {
    const h = HOST.exec(hostText);
    if (!h) fail('the host must be a host name or an IP address, with an optional :port');
    host = h[1]!.toLowerCase();
    if (h[2] !== undefined) {
      port = Number(h[2]);
      if (port < 1 || port > 65535) fail('the port must be 1-65535');
    }
  }
  // `test:////path` is `test:///path` to libvirt: one spelling of each path.
  const path = pathText.replace(/^\/+/, '/');
  if (!PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    fail('the path must be absolute, of letters, digits and . _ + -, without . or .. parts');
  }
  const params = parseParams(query);
  if (driver === 'qemu' && path !== '/system' && path !== '/session') {
    fail('a qemu URI ends in /system or /session');
  }
  if (driver === 'test' && (transport !== null || host !== null) && path !== '/default') {
    fail('a simulated host behind a daemon is test+<transport>:///default');
  }
  return { driver, transport, user: userText ?? null, host, port, path, params };
}

/** One spelling of a parsed URI: lower-case scheme and host, parameters in order. */
export function formatLibvirtUri(u: LibvirtUri, path = u.path): string {
  const scheme = u.transport ? `${u.driver}+${u.transport}` : u.driver;
  const authority = `${u.user ? `${u.user}@` : ''}${u.host ?? ''}${u.port ? `:${u.port}` : ''}`;
  const params = [...u.params].sort(([a], [b]) => a.localeCompare(b));
  const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `${scheme}://${authority}${path}${query ? `?${query}` : ''}`;
}

/** Whether the URI is libvirt's test driver in this process (a file or the default host). */
export function isLocalTestUri(u: LibvirtUri): boolean {
  return u.driver === 'test' && u.transport === null && u.host === null;
}
