import { InvalidCursorError } from './errors.ts';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

/** The API bounds `limit`; direct callers get the same bounds rather than an unbounded read. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE_SIZE;
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_PAGE_SIZE);
}

// Keyset cursors are opaque to clients: the sort key of the last item handed out, as JSON in
// base64url, so a client passes them back untouched and never builds one.

export function encodeCursor(values: readonly string[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The sort key inside a cursor, which must hold exactly `arity` strings. */
export function decodeCursor(cursor: string, arity: number): string[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (err) {
    throw new InvalidCursorError({ cause: err });
  }
  if (
    !Array.isArray(values) ||
    values.length !== arity ||
    !values.every((v): v is string => typeof v === 'string')
  ) {
    throw new InvalidCursorError();
  }
  return values;
}

/** Splits a page fetched with one extra row into the page and the cursor after it. */
export function toPage<T>(rows: T[], limit: number, sortKey: (item: T) => string[]) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const nextCursor = rows.length > limit && last ? encodeCursor(sortKey(last)) : null;
  return { items, nextCursor };
}
