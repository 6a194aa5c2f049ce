import { appRouter } from '../../api/router.ts';

export type ProcedureType = 'query' | 'mutation';

/** Every procedure the API serves, by path, read from the router itself. */
export function procedures(): { path: string; type: ProcedureType }[] {
  const defs = appRouter._def.procedures as unknown as Record<
    string,
    { _def: { type: ProcedureType } }
  >;
  return Object.entries(defs).map(([path, p]) => ({ path, type: p._def.type }));
}

export interface RawAnswer {
  status: number;
  /** The tRPC error code, when the answer is an error. */
  code: string | undefined;
  text: string;
}

/**
 * One call as any HTTP client makes it: a query as GET `?input=`, a mutation as POST with a JSON
 * body; `input` is sent as given (a string is sent raw, for bodies that are not JSON).
 */
export async function rawCall(
  apiUrl: string,
  path: string,
  type: ProcedureType,
  input: unknown,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const body = typeof input === 'string' ? input : JSON.stringify(input);
  const res =
    type === 'query'
      ? await fetch(`${apiUrl}/${path}?input=${encodeURIComponent(body)}`, { headers })
      : await fetch(`${apiUrl}/${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
        });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { data?: { code?: string } } }).error?.data?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, text };
}

export const withToken = (token: string) => ({ authorization: `Bearer ${token}` });
