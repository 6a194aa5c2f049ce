import { describe, expect, it } from 'vitest';
import { fingerprint, KnownHosts } from '../../drivers/geats/known-hosts.ts';

// Made with OpenSSH: `ssh-keygen -H` hashed the names [127.0.0.1]:2222 and hv1.example.org,
// and `ssh-keygen -lf` printed the fingerprint. The driver must read such files as ssh does.
const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIFitrK4kMR2jD+gcqp0Fhum5pxQgDpKhkXUuqvgXCqzV';
const HASHED = `|1|xAYoVMhN09GNdmWVQMy0rST0zWM=|/wP3a5TX+M7t917urMLgEEvQp8Q= ssh-ed25519 ${KEY}
|1|UEp7tcdcjgEbdL1wSWOB7CPkBF8=|yYrnCyGhDgJWEuYs0n4p6TKfW2o= ssh-ed25519 ${KEY}
`;
const key = Buffer.from(KEY, 'base64');
const OTHER = 'AAAAC3NzaC1lZDI1NTE5AAAAIBZE4boDZx1t9wQWDK24dKDKXLNC4tJEUsgNt3GAQ10J';
const other = Buffer.from(OTHER, 'base64');

describe('known_hosts', () => {
  it("prints a key's fingerprint as ssh-keygen does", () => {
    expect(fingerprint(key)).toBe('SHA256:V0uffyN/9iRPTxNWLbcLRCb3cOMELbZZ1Cpx2mIVGnQ');
  });

  it.each([
    ['hv1.example.org', 22],
    ['127.0.0.1', 2222],
  ])('accepts %s:%i from a file hashed by ssh-keygen -H', (host, port) => {
    const known = KnownHosts.parse(HASHED);
    expect(known.verify(host, port, key)).toEqual({ ok: true });
    expect(known.keyTypes(host, port)).toEqual(['ssh-ed25519']);
  });

  it.each<[string, string, string, number, Buffer, string]>([
    [
      'the same host on another port',
      `127.0.0.1 ssh-ed25519 ${KEY}`,
      '127.0.0.1',
      2222,
      key,
      'HOST_KEY_UNKNOWN',
    ],
    [
      'another key for a known host',
      `hv1 ssh-ed25519 ${KEY}`,
      'hv1',
      22,
      other,
      'HOST_KEY_MISMATCH',
    ],
    [
      'a revoked key',
      `@revoked * ssh-ed25519 ${KEY}\nhv1 ssh-ed25519 ${KEY}`,
      'hv1',
      22,
      key,
      'HOST_KEY_REVOKED',
    ],
    [
      'a host a pattern excludes',
      `hv*,!hv2 ssh-ed25519 ${KEY}`,
      'hv2',
      22,
      key,
      'HOST_KEY_UNKNOWN',
    ],
    [
      'a key trusted only as a CA',
      `@cert-authority * ssh-ed25519 ${KEY}`,
      'hv1',
      22,
      key,
      'HOST_KEY_UNKNOWN',
    ],
    ['a hashed name of another host', HASHED, 'hv2.example.org', 22, key, 'HOST_KEY_UNKNOWN'],
  ])('refuses %s', (_what, text, host, port, presented, code) => {
    const verdict = KnownHosts.parse(text, '/etc/vagoth/known_hosts').verify(host, port, presented);
    expect(verdict).toMatchObject({ ok: false, code });
  });

  it('names the file, the presented key and the known one when they differ', () => {
    const verdict = KnownHosts.parse(`[hv1]:2200 ssh-ed25519 ${KEY}`, '/etc/vagoth/known_hosts');
    const refused = verdict.verify('hv1', 2200, other);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.reason).toContain(fingerprint(other));
    expect(refused.reason).toContain(`ssh-ed25519 ${fingerprint(key)}`);
    expect(refused.reason).toContain('/etc/vagoth/known_hosts');
  });

  it('accepts wildcard patterns and skips comments and blank lines', () => {
    const known = KnownHosts.parse(`# fleet\n\nhv?.dc1,10.0.0.* ssh-ed25519 ${KEY}\n`);
    expect(known.verify('hv7.dc1', 22, key).ok).toBe(true);
    expect(known.verify('10.0.0.12', 22, key).ok).toBe(true);
    expect(known.verify('hv10.dc1', 22, key).ok).toBe(false);
  });
});
