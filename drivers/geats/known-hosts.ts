import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One key line of an OpenSSH known_hosts file. */
interface KnownKey {
  patterns: string[];
  type: string;
  key: Buffer;
  revoked: boolean;
}

/** How a host's presented key compares with what the known_hosts file says of that host. */
export type HostKeyVerdict =
  | { ok: true }
  | {
      ok: false;
      code: 'HOST_KEY_UNKNOWN' | 'HOST_KEY_MISMATCH' | 'HOST_KEY_REVOKED';
      reason: string;
    };

/** `SHA256:...` as `ssh-keygen -lf` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The name a known_hosts line gives a host: `host`, or `[host]:port` off port 22. */
function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matchesPattern(pattern: string, name: string): boolean {
  const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(pattern);
  if (hashed) {
    const mac = createHmac('sha1', Buffer.from(hashed[1]!, 'base64')).update(name).digest();
    const want = Buffer.from(hashed[2]!, 'base64');
    return mac.length === want.length && timingSafeEqual(mac, want);
  }
  const glob = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${glob}$`, 'i').test(name);
}

/** A line's host field: any positive pattern matches and no negated (`!`) one does. */
function matchesHost(patterns: string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matchesPattern(p.slice(1), name)) return false;
    } else if (matchesPattern(p, name)) matched = true;
  }
  return matched;
}

export class KnownHosts {
  readonly #keys: KnownKey[];
  /** Where the keys came from, for messages. */
  readonly source: string;

  private constructor(keys: KnownKey[], source: string) {
    this.#keys = keys;
    this.source = source;
  }

  /** Parses known_hosts text; `@cert-authority` lines are skipped (certificates are not supported). */
  static parse(text: string, source = 'known_hosts'): KnownHosts {
    const keys: KnownKey[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const fields = line.split(/\s+/);
      const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
      if (marker === '@cert-authority') continue;
      const [hosts, type, blob] = fields;
      if (!hosts || !type || !blob) continue;
      keys.push({
        patterns: hosts.split(','),
        type,
        key: Buffer.from(blob, 'base64'),
        revoked: marker === '@revoked',
      });
    }
    return new KnownHosts(keys, source);
  }

  /** The key types known for a host, so the client asks the server for one of those. */
  keyTypes(host: string, port: number): string[] {
    const name = hostName(host, port);
    return [
      ...new Set(
        this.#keys.filter((k) => !k.revoked && matchesHost(k.patterns, name)).map((k) => k.type),
      ),
    ];
  }

  verify(host: string, port: number, key: Buffer): HostKeyVerdict {
    const name = hostName(host, port);
    const same = (k: KnownKey) => k.key.length === key.length && timingSafeEqual(k.key, key);
    if (this.#keys.some((k) => k.revoked && same(k))) {
      return {
        ok: false,
        code: 'HOST_KEY_REVOKED',
        reason: `its key ${fingerprint(key)} is revoked`,
      };
    }
    const known = this.#keys.filter((k) => !k.revoked && matchesHost(k.patterns, name));
    if (known.some(same)) return { ok: true };
    if (known.length === 0) {
      return {
        ok: false,
        code: 'HOST_KEY_UNKNOWN',
        reason: `${name} is not in ${this.source} (it presented ${fingerprint(key)})`,
      };
    }
    return {
      ok: false,
      code: 'HOST_KEY_MISMATCH',
      reason: `it presented ${fingerprint(key)}, but ${this.source} has ${known.map((k) => `${k.type} ${fingerprint(k.key)}`).join(', ')} for ${name}`,
    };
  }
}
