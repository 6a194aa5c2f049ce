import type { IncomingMessage, ServerResponse } from 'node:http';
import { getTRPCErrorFromUnknown, type AnyRouter, type TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import {
  generateOpenApiDocument,
  type OpenApiMeta,
  type OpenApiMethod,
  type OpenAPIObject,
} from 'trpc-to-openapi';
import { ZodError, type z } from 'zod';
import { errorFormatter } from './trpc.ts';

/**
 * The REST API of a layer above the cluster (the cloud's under /cloud/api, the service layer's
 * under /services/api): each procedure at the route its `openapi` meta names (`restRoutes`),
 * called through the layer's own router, so the same token check, rule and validation answer.
 * trpc-to-openapi makes the OpenAPI document from the router; the calls are dispatched here
 * rather than by its handler, which switches on coercion in the shared input schemas and so
 * would let the tRPC API take `"false"` for `false`. Here only a query string's or path's text
 * is read as a number or boolean, where the schema asks for one.
 */
export interface RestApi {
  router: AnyRouter;
  /** Where the routes are served, and the document's server: `/cloud/api`. */
  basePath: string;
  /** Where the OpenAPI document is served: `/cloud/openapi.json`. */
  documentPath: string;
  document: RestDocument;
  /** The router's caller for one request, holding its Authorization header. */
  callerFor(authorization: string | undefined): object;
  /** Who logs an internal error: `cloud`. */
  name: string;
}

/** What the OpenAPI document says of the layer. */
export interface RestDocument {
  title: string;
  description: string;
}

/**
 * What any call of a layer above the cluster may answer besides its result: the layer's
 * refusals, and 502 when the layer below it does not answer.
 */
export const LAYER_ERRORS = [400, 401, 403, 404, 409, 412, 413, 500, 502];

/** `METHOD /path`, `{field}` a path parameter. */
export type RestRoute = `${OpenApiMethod} /${string}`;

/**
 * A layer's meta helper: `restRoutes<CloudMeta>(LAYER_ERRORS)('instances')(PROJECT_READ, 'GET /...')`
 * is the procedure's rule with its route, listed under `instances` in the document, behind the
 * bearer token, answering `errors` besides its result.
 */
export function restRoutes<M extends OpenApiMeta>(errors: number[]) {
  return (tag: string) =>
    (meta: M, route: RestRoute): M => {
      const [method, path] = route.split(' ') as [OpenApiMethod, `/${string}`];
      return {
        ...meta,
        openapi: { method, path, protect: true, tags: [tag], errorResponses: errors },
      };
    };
}

interface Route {
  method: string;
  /** The route's path as a pattern; its groups are the path parameters, in `params` order. */
  pattern: RegExp;
  params: string[];
  procedure: string;
  /** Input fields a query string or path gives as text that the schema takes as numbers. */
  numbers: Set<string>;
  booleans: Set<string>;
}

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType> };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** A field's type under optional, default and nullable. */
function baseType(schema: z.ZodType): string {
  let def = defOf(schema);
  while (def.innerType && ['optional', 'default', 'nullable', 'prefault'].includes(def.type)) {
    def = defOf(def.innerType);
  }
  return def.type;
}

function routesOf(router: AnyRouter): Route[] {
  const procedures = router._def.procedures as unknown as Record<
    string,
    { _def: { meta?: OpenApiMeta; inputs: z.ZodType[] } }
  >;
  return Object.entries(procedures).flatMap(([path, p]) => {
    const openapi = p._def.meta?.openapi;
    if (!openapi) return [];
    const params: string[] = [];
    const pattern = openapi.path.replace(/\{(\w+)\}|[^{}]+/g, (all, param?: string) => {
      if (param === undefined) return all.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      params.push(param);
      return '([^/]+)';
    });
    const shape = p._def.inputs[0] ? (defOf(p._def.inputs[0]).shape ?? {}) : {};
    const fields = (type: string) =>
      new Set(Object.keys(shape).filter((k) => baseType(shape[k]!) === type));
    return [
      {
        method: openapi.method,
        pattern: new RegExp(`^${pattern}/?$`),
        params,
        procedure: path,
        numbers: fields('number'),
        booleans: fields('boolean'),
      },
    ];
  });
}

class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A text value as the schema's type asks for it; left as text (and refused) when it is not. */
function fromText(route: Route, field: string, text: string): unknown {
  if (route.numbers.has(field) && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (route.booleans.has(field) && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new RestError(415, 'UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new RestError(413, 'PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RestError(400, 'BAD_REQUEST', 'the body is not JSON');
  }
}

/** The input of a call: the query string (GET, DELETE) or the body, and the path's fields. */
async function inputOf(
  req: IncomingMessage,
  url: URL,
  route: Route,
  match: RegExpExecArray,
  maxBodyBytes: number,
): Promise<Record<string, unknown>> {
  let input: Record<string, unknown> = {};
  if (route.method === 'GET' || route.method === 'DELETE') {
    for (const [field, text] of url.searchParams) {
      if (field in input) throw new RestError(400, 'BAD_REQUEST', `${field}: given more than once`);
      input[field] = fromText(route, field, text);
    }
  } else {
    const body = await readBody(req, maxBodyBytes);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new RestError(400, 'BAD_REQUEST', 'input: must be a JSON object');
    }
    input = { ...(body as Record<string, unknown>) };
  }
  route.params.forEach((field, i) => {
    let text: string;
    try {
      text = decodeURIComponent(match[i + 1]!);
    } catch {
      throw new RestError(400, 'BAD_REQUEST', `${field}: is not a well-formed path segment`);
    }
    input[field] = fromText(route, field, text);
  });
  return input;
}

/** What a refusal answers: its code, and a message naming the field and the reason. */
function refusal(error: TRPCError): { status: number; body: object } {
  const status = getHTTPStatusCodeFromError(error);
  if (status >= 500 && error.code === 'INTERNAL_SERVER_ERROR') {
    return { status, body: { code: error.code, message: 'internal error' } };
  }
  const { message } = errorFormatter({ shape: { message: error.message, data: {} }, error });
  const issues =
    error.cause instanceof ZodError
      ? error.cause.issues.map((i) => ({ message: `${i.path.join('.') || 'input'}: ${i.message}` }))
      : undefined;
  return { status, body: { code: error.code, message, ...(issues ? { issues } : {}) } };
}

function send(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The layer's OpenAPI 3.1 document; its server is `basePath` on the same origin. */
export function openApiDocument(
  router: AnyRouter,
  basePath: string,
  document: RestDocument,
): OpenAPIObject {
  return generateOpenApiDocument(router, { ...document, version: '1', baseUrl: basePath });
}

/** Serves the REST routes under `basePath` and the OpenAPI document at `documentPath`. */
export function restHandler(api: RestApi, limits: { maxBodyBytes: number }) {
  const routes = routesOf(api.router);
  let document: string | null = null;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://vagoth');
    if (url.pathname === api.documentPath) {
      if (req.method !== 'GET')
        return send(res, 405, { code: 'METHOD_NOT_SUPPORTED' }, { allow: 'GET' });
      document ??= JSON.stringify(openApiDocument(api.router, api.basePath, api.document));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(document);
      return;
    }
    const path = url.pathname.slice(api.basePath.length);
    const matching = routes.flatMap((route) => {
      const match = route.pattern.exec(path);
      return match ? [{ route, match }] : [];
    });
    const found = matching.find((m) => m.route.method === req.method);
    try {
      if (!found) {
        if (matching.length === 0)
          throw new RestError(404, 'NOT_FOUND', `no route ${url.pathname}`);
        const allow = matching
          .map((m) => m.route.method)
          .sort()
          .join(', ');
        return send(
          res,
          405,
          { code: 'METHOD_NOT_SUPPORTED', message: `allowed: ${allow}` },
          { allow },
        );
      }
      const input = await inputOf(req, url, found.route, found.match, limits.maxBodyBytes);
      const caller = api.callerFor(req.headers.authorization);
      const call = found.route.procedure
        .split('.')
        .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], caller) as (
        input: unknown,
      ) => Promise<unknown>;
      send(res, 200, await call(input));
    } catch (err) {
      if (err instanceof RestError) {
        return send(res, err.status, { code: err.code, message: err.message });
      }
      const error = getTRPCErrorFromUnknown(err);
      if (error.code === 'INTERNAL_SERVER_ERROR') {
        console.error(`${api.name} REST ${found?.route.procedure ?? '?'}:`, error.cause ?? error);
      }
      const { status, body } = refusal(error);
      send(res, status, body);
    }
  };
}
