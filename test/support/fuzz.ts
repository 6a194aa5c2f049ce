import fc from 'fast-check';

// What the fuzz tests of every API (the cluster's, the cloud's) send: valid examples, broken.

const deep = (depth: number): unknown => {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const thousandTags = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, 'v']));

/** What a careless or hostile client sends instead of a field. */
const nasty: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '\ud800',
    'x\udfffy',
    '\u0000',
    'a\u001b[2Jb',
    '\r\n',
    '\u0085',
    'NaN',
    'Infinity',
    '-0',
    '1e309',
    '',
    ' ',
    '__proto__',
    'constructor',
    '../../etc/passwd',
    "'; DROP TABLE nodes; --",
    '<x>&amp;',
  ),
  fc.constantFrom(null, true, false, 0, -1, -0.5, 2 ** 31, -(2 ** 53), 2 ** 64, 1e308, -1e308),
  fc.constantFrom('x'.repeat(100_000), deep(2000), thousandTags, [], {}, [[[]]]),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Every place in a value a mutation may strike: the value itself, and everything inside. */
function placesIn(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  const out = [path];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...placesIn(v, [...path, i])));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push(...placesIn(v, [...path, k]));
  }
  return out;
}

function withAt(value: unknown, path: (string | number)[], change: (v: unknown) => unknown) {
  if (path.length === 0) return change(value);
  const copy = (
    Array.isArray(value) ? [...(value as unknown[])] : { ...(value as object) }
  ) as Record<string | number, unknown>;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  copy[head] = withAt(copy[head], rest, change);
  return copy;
}

type Mutation = 'keep' | 'replace' | 'add-key' | 'drop' | 'many-tags';

/** A valid example, then one mutation of it. */
export function mutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const mutation = fc.constantFrom<Mutation>(
    'keep',
    'replace',
    'replace',
    'add-key',
    'drop',
    'many-tags',
  );
  return fc
    .tuple(valid, mutation, fc.nat(), nasty, fc.string({ maxLength: 12 }))
    .map(([example, how, at, value, key]) => {
      const places = placesIn(example);
      const place = places[at % places.length] ?? [];
      switch (how) {
        case 'keep':
          return example;
        case 'replace':
          return withAt(example, place, () => value);
        case 'add-key':
          return withAt(example, place, (v) =>
            v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, [key]: value } : v,
          );
        case 'drop':
          return withAt(example, place.slice(0, -1), (v) => {
            if (v === null || typeof v !== 'object' || place.length === 0) return undefined;
            const copy: Record<string, unknown> = { ...(v as object) };
            delete copy[String(place.at(-1))];
            return Array.isArray(v) ? Object.values(copy) : copy;
          });
        case 'many-tags':
          return withAt(example, place, () => thousandTags);
      }
    });
}

/** Bodies and query strings that are not JSON at all, or JSON no parser should have to take. */
export const RAW: { what: string; body?: string | Uint8Array; query?: string }[] = [
  { what: 'a cut-off object', body: '{"name":' },
  { what: 'an empty body', body: '' },
  { what: 'invalid UTF-8', body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
  { what: 'NaN', body: 'NaN' },
  { what: 'a lone surrogate escape', body: '"\\ud800"' },
  { what: '100,000 nested arrays', body: '['.repeat(100_000) + ']'.repeat(100_000) },
  { what: 'a NUL byte', body: '{"name":"a\u0000"}' },
  { what: 'bad percent-encoding', query: '%ZZ' },
  { what: 'a query that is not JSON', query: encodeURIComponent('{name:') },
];

/** Runs `run` over `items`, `size` at a time. */
export async function pool<T>(items: T[], size: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

export type Kind = 'query' | 'mutation';

/**
 * One call as any HTTP client makes it, with `token`: the raw body is the caller's, so anything
 * JSON can carry reaches the server. Answers the status, the time it took and the body.
 */
export async function callOverHttp(
  base: string,
  token: string,
  path: string,
  input: unknown,
  kind: Kind,
) {
  const json = input === undefined ? undefined : JSON.stringify(input);
  const url =
    kind === 'query' && json !== undefined
      ? `${base}/${path}?input=${encodeURIComponent(json)}`
      : `${base}/${path}`;
  const started = performance.now();
  const res = await fetch(url, {
    method: kind === 'query' ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    ...(kind === 'mutation' && json !== undefined ? { body: json } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const body = await res.text();
  return { status: res.status, ms: performance.now() - started, body };
}

/** Every procedure sent each of RAW (what is not JSON): the answers that were 5xx. */
export async function serverErrorsOnRaw(
  base: string,
  token: string,
  procedures: Record<string, { _def: { type: Kind } }>,
): Promise<string[]> {
  const answers: string[] = [];
  const headers = { authorization: `Bearer ${token}` };
  for (const [path, { _def }] of Object.entries(procedures)) {
    for (const raw of RAW) {
      const isQuery = _def.type === 'query';
      if (isQuery !== (raw.query !== undefined)) continue;
      const res = await fetch(
        isQuery ? `${base}/${path}?input=${raw.query}` : `${base}/${path}`,
        isQuery ? { headers } : { method: 'POST', headers, body: raw.body },
      );
      await res.text();
      if (res.status >= 500) answers.push(`${path}, ${raw.what}: ${res.status}`);
    }
  }
  return answers;
}
