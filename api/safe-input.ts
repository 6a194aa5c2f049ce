import { z } from 'zod';
import type { JsonObject } from '../registry/types.ts';

// C0 controls but tab and newline, DEL, C1 controls; a high surrogate with no low one after
// it, a low one with no high one before it. PostgreSQL cannot store a lone surrogate (jsonb
// refuses it, text turns it into U+FFFD), and a control character has no place in a name, a
// tag or a node key: either would be stored half-way or differently than it was sent.
const UNSAFE_TEXT =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const UNSAFE_TEXT_MESSAGE =
  'must not hold a control character (other than tab and newline) or a lone UTF-16 surrogate';

export function isSafeText(s: string): boolean {
  return !UNSAFE_TEXT.test(s);
}

/** Every free-form string of the API's input is one of these: storable as it was sent. */
export function safeString() {
  return z.string().refine(isSafeText, UNSAFE_TEXT_MESSAGE);
}

const utf8 = new TextEncoder();

/** The size of a value as the JSON it is carried in (workflow payloads, jsonb). */
export function jsonBytes(value: unknown): number {
  return utf8.encode(JSON.stringify(value)).length;
}

export interface RecordBounds {
  maxKeys: number;
  maxBytes: number;
}

/** A record's count of keys and size as JSON, each with an issue that says its bound. */
export function bounded<T extends z.ZodType<Record<string, unknown>>>(
  schema: T,
  { maxKeys, maxBytes }: RecordBounds,
) {
  return schema
    .refine((o) => Object.keys(o).length <= maxKeys, `must have at most ${maxKeys} keys`)
    .refine(
      (o) => jsonBytes(o) <= maxBytes,
      `must be at most ${maxBytes / 1024} KiB as JSON (UTF-8)`,
    );
}

/** String keys to string values (tags): both safe, both bounded. */
export function tagRecord(bounds: RecordBounds) {
  return bounded(z.record(safeString().min(1).max(64), safeString().max(256)), bounds);
}

export const MAX_JSON_DEPTH = 16;
// Past this many, more issues tell a caller nothing new and cost the answer its size.
const MAX_ISSUES = 10;

/**
 * Checks a JSON value in one walk: strings and keys safe, numbers finite, nesting at most
 * MAX_JSON_DEPTH deep, at most `maxBytes` in all. It stops at the first bound passed, so a
 * deeply nested or huge value costs no more than the bound to refuse (z.json() would recurse
 * through all of it first).
 */
function checkJson(root: Record<string, unknown>, ctx: z.RefinementCtx, maxBytes: number) {
  let bytes = 2;
  let issues = 0;
  const issue = (path: PropertyKey[], message: string) => {
    issues++;
    ctx.addIssue({ code: 'custom', path, message });
  };
  const text = (s: string, path: PropertyKey[]) => {
    if (!isSafeText(s)) issue(path, UNSAFE_TEXT_MESSAGE);
    bytes += utf8.encode(s).length + 3;
  };
  const walk = (value: unknown, path: PropertyKey[], depth: number): boolean => {
    if (depth > MAX_JSON_DEPTH) {
      issue(path, `must nest at most ${MAX_JSON_DEPTH} levels deep`);
      return false;
    }
    if (typeof value === 'string') text(value, path);
    else if (typeof value === 'number') {
      if (!Number.isFinite(value)) issue(path, 'must be a finite number');
      bytes += 8;
    } else if (typeof value === 'boolean' || value === null) bytes += 5;
    else if (Array.isArray(value)) {
      bytes += 2;
      for (const [i, item] of value.entries())
        if (!walk(item, [...path, i], depth + 1)) return false;
    } else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      bytes += 2;
      for (const [key, item] of Object.entries(value)) {
        text(key, [...path, key]);
        if (!walk(item, [...path, key], depth + 1)) return false;
      }
    } else issue(path, 'must be JSON: a string, number, boolean, null, array or object');
    if (bytes > maxBytes) {
      issue([], `must be at most ${maxBytes / 1024} KiB as JSON (UTF-8)`);
      return false;
    }
    return issues < MAX_ISSUES;
  };
  for (const [key, value] of Object.entries(root)) {
    bytes += utf8.encode(key).length + 3;
    if (!walk(value, [key], 1)) return;
  }
}

/** A definition or metadata object of JSON values; in a metadata patch, null removes a key. */
export function jsonRecord({ maxKeys, maxBytes }: RecordBounds) {
  return z
    .record(safeString().min(1).max(128), z.unknown())
    .refine((o) => Object.keys(o).length <= maxKeys, `must have at most ${maxKeys} keys`)
    .superRefine((o, ctx) => checkJson(o, ctx, maxBytes))
    .transform((o) => o as JsonObject);
}
