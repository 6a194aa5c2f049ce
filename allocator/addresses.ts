/** Pure IPv4 arithmetic for address pools. */

export interface Pool {
  cidr: string;
  gateway: string | null;
  reserved: Array<{ first: string; last: string }>;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function ipToInt(ip: string): number {
  // Strictly dotted decimal: `Number()` alone would take ' 1.2.3.4', '0x1' or '1.2.3.'.
  if (!IPV4.test(ip)) throw new Error(`not an IPv4 address: ${ip}`);
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function parseCidr(cidr: string): { base: number; prefix: number; size: number } {
  const match = /^([^/]+)\/(3[0-2]|[12]?\d)$/.exec(cidr);
  if (!match) throw new Error(`not a CIDR: ${cidr}`);
  const base = ipToInt(match[1]!);
  const prefix = Number(match[2]);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0)
    throw new Error(
      `${cidr} has host bits set (did you mean ${intToIp(base - (base % size))}/${prefix}?)`,
    );
  return { base, prefix, size };
}

/** Why `ip` cannot be given to a VM in this pool, or null when it can. */
export function addressProblem(pool: Pool, ip: string): string | null {
  const { base, size } = parseCidr(pool.cidr);
  const n = ipToInt(ip);
  if (n < base || n >= base + size) return `${ip} is not in ${pool.cidr}`;
  if (n === base) return `${ip} is the network address of ${pool.cidr}`;
  if (n === base + size - 1) return `${ip} is the broadcast address of ${pool.cidr}`;
  if (pool.gateway !== null && ipToInt(pool.gateway) === n) return `${ip} is the gateway`;
  const range = pool.reserved.find((r) => ipToInt(r.first) <= n && n <= ipToInt(r.last));
  return range ? `${ip} is reserved (${range.first}-${range.last})` : null;
}
