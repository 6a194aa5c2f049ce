import { Validator } from '@seriousme/openapi-schema-validator';
import type { OpenAPIObject } from 'trpc-to-openapi';

// A layer's REST API as any HTTP client calls it, from its OpenAPI document: plain fetch, JSON.

/** A route of an OpenAPI document, and the procedure it serves (`services.get`). */
export interface RestRoute {
  /** As the document writes it: `/projects/{project}/services`. */
  route: string;
  method: string;
  procedure: string;
}

export function routesOf(doc: OpenAPIObject): RestRoute[] {
  return Object.entries(doc.paths ?? {}).flatMap(([route, methods]) =>
    Object.entries(methods as Record<string, { operationId: string }>).map(([m, op]) => ({
      route,
      method: m.toUpperCase(),
      procedure: op.operationId.replace('-', '.'),
    })),
  );
}

/** A segment as a client would send it; a lone surrogate cannot be: `otherwise` goes instead. */
function encoded(text: string, otherwise: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return otherwise;
  }
}

/**
 * The request for `input` on a route: its path's fields in the path (`segment` may put
 * something else there), the rest in the query string (GET, DELETE) or a JSON body.
 */
export function restRequest(
  base: string,
  { route, method }: Pick<RestRoute, 'route' | 'method'>,
  input: unknown,
  segment?: string,
): { url: URL; method: string; body: string | undefined } {
  const fields = { ...(input !== null && typeof input === 'object' ? input : {}) } as Record<
    string,
    unknown
  >;
  const path = route.replace(/\{(\w+)\}/g, (_, f: string) => {
    const v = fields[f];
    delete fields[f];
    const junk = segment ?? 'x';
    return segment !== undefined || (typeof v !== 'string' && typeof v !== 'number')
      ? junk
      : encoded(String(v), junk);
  });
  const url = new URL(`${base}${path}`);
  const body = method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(fields);
  if (body === undefined) {
    for (const [k, v] of Object.entries(fields)) {
      url.searchParams.append(k, typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
    }
  }
  return { url, method, body };
}

export interface RestAnswer {
  status: number;
  body: Record<string, unknown> & { code?: string; message?: string };
}

/**
 * One call with `token`; `body` is sent as JSON (a string as it is). Answers its status and
 * its body, read as JSON.
 */
export async function restCall(
  url: string | URL,
  method: string,
  token: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RestAnswer> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as RestAnswer['body'] };
}

export interface PublishedDocument {
  openapi: string;
  servers: { url: string }[];
  paths: Record<
    string,
    Record<string, { operationId: string; security: unknown[]; responses: unknown }>
  >;
}

/**
 * What is wrong with the OpenAPI document served at `url`: it must be OpenAPI 3.1 that
 * validates, served from `base`, with a route for each of `procedures` and no other, each
 * behind the bearer token. Answers the document too.
 */
export async function documentProblems(url: string, base: string, procedures: string[]) {
  const res = await fetch(url);
  const doc = (await res.json()) as PublishedDocument;
  const operations = Object.values(doc.paths ?? {}).flatMap((methods) => Object.values(methods));
  const problems = [
    res.status === 200 ? null : `answered ${res.status}`,
    doc.openapi === '3.1.0' ? null : `OpenAPI ${doc.openapi}`,
    JSON.stringify(await new Validator().validate(doc as never)).replace('{"valid":true}', ''),
    JSON.stringify(doc.servers) === JSON.stringify([{ url: base }]) ? null : 'its server',
    JSON.stringify(operations.map((o) => o.operationId.replace('-', '.')).sort()) ===
    JSON.stringify([...procedures].sort())
      ? null
      : 'its routes are not the procedures',
    ...operations.map((o) =>
      JSON.stringify(o.security) === '[{"Authorization":[]}]' ? null : `${o.operationId} is open`,
    ),
  ].filter((p): p is string => Boolean(p));
  return { doc, operations, problems };
}

/** Every route of `doc` under `base` that does not refuse a call without a token (401). */
export async function openWithoutToken(base: string, doc: PublishedDocument): Promise<string[]> {
  const open: string[] = [];
  for (const r of routesOf(doc as unknown as OpenAPIObject)) {
    const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {};
    const path = r.route.replace(/\{\w+\}/g, 'x');
    const answer = await restCall(`${base}${path}`, r.method, undefined, body);
    if (answer.status !== 401 || answer.body.code !== 'UNAUTHORIZED') {
      open.push(`${r.method} ${r.route}: ${answer.status}`);
    }
  }
  return open;
}
