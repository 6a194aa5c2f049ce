import type { ApiDeps } from '../../api/context.ts';
import { bearer, createContextInner } from '../../api/context.ts';
import { createCaller } from '../../api/router.ts';
import { TokenVerifier } from '../../api/token-verifier.ts';
import { createToken, type Role } from '../../registry/tokens.ts';

export type ApiCaller = ReturnType<typeof createCaller>;

/**
 * The API's dependencies with a token verifier, and an in-process caller holding a fresh token
 * of `role`: its every call is checked as an HTTP request carrying that token would be.
 */
export async function tokenCaller(
  base: Omit<ApiDeps, 'tokens'>,
  role: Role = 'admin',
): Promise<{ deps: ApiDeps; token: string; api: ApiCaller }> {
  const deps: ApiDeps = {
    ...base,
    tokens: new TokenVerifier(base.sql, { ttlMs: 5_000, maxEntries: 1_000 }),
  };
  const { token } = await createToken(base.sql, { name: `test-${role}`, role });
  return { deps, token, api: createCaller(createContextInner(deps, bearer(token))) };
}
