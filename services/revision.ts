import { createHash } from 'node:crypto';

/** JSON with every object's keys in order: the same template gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Pure: a template's revision, `r` and 12 hex digits of the digest of its canonical JSON. */
export function templateRevision(template: unknown): string {
  return `r${createHash('sha256').update(canonical(template)).digest('hex').slice(0, 12)}`;
}
