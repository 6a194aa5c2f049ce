import type { Role } from '../registry/tokens.ts';

/** Who is calling: a token's holder, or vagoth itself for the callers it runs in-process. */
export interface Principal {
  /** The token's id; null for an in-process caller, which holds no token. */
  tokenId: string | null;
  name: string;
  role: Role;
}

export type ProcedureType = 'query' | 'mutation' | 'subscription';

export type Decision = { allowed: true } | { allowed: false; reason: string };

/** Procedures only an admin may call, whatever their type: the tokens that open the API. */
const ADMIN_ONLY = /^tokens\./;

/**
 * The one authorisation rule, pure so that a test can try every role on every procedure:
 * an admin may call anything; an operator anything but the tokens; a reader only queries
 * (which change nothing), the tokens' list excepted.
 */
export function authorize(principal: Principal, path: string, type: ProcedureType): Decision {
  if (principal.role === 'admin') return { allowed: true };
  if (ADMIN_ONLY.test(path)) return { allowed: false, reason: `${path} needs an admin token` };
  if (principal.role === 'operator' || type === 'query') return { allowed: true };
  return { allowed: false, reason: `${path} changes the cluster: a reader token may not` };
}
