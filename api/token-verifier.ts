import type { Sql } from '../registry/db.ts';
import { findToken, isTokenShaped, tokenHash, type TokenInfo } from '../registry/tokens.ts';
import type { Principal } from './authorize.ts';

export interface TokenVerifierOptions {
  /** How long an answer is trusted before the registry is asked again: a revocation made by
   * another API process is honoured within this time (this process's own at once). */
  ttlMs: number;
  /** Tokens remembered at most; the least recently used is forgotten first. */
  maxEntries: number;
  now?: () => number;
}

interface Entry {
  at: number;
  info: Promise<TokenInfo | null>;
  /** The token's id once the look-up has answered. */
  id?: string | null;
}

/**
 * Checks bearer tokens against the registry, remembering each answer for a few seconds so a
 * busy caller costs no database round trip per call. Calls that arrive together while a token
 * is being looked up share the one look-up.
 */
export class TokenVerifier {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(
    private readonly sql: Sql,
    private readonly options: TokenVerifierOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The principal a token stands for, or null: unknown, revoked, expired or malformed. */
  async verify(token: string | undefined): Promise<Principal | null> {
    if (token === undefined || !isTokenShaped(token)) return null;
    const key = tokenHash(token).toString('base64');
    const now = this.now();
    let entry = this.entries.get(key);
    if (entry && now - entry.at < this.options.ttlMs) {
      // Most recently used last: the first key is the one to forget when full.
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      const fresh: Entry = { at: now, info: findToken(this.sql, token) };
      void fresh.info.then(
        (info) => (fresh.id = info?.id ?? null),
        () => {},
      );
      entry = fresh;
      this.remember(key, entry);
    }
    let info: TokenInfo | null;
    try {
      info = await entry.info;
    } catch (err) {
      // A failed look-up is not remembered: the next call asks again.
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw err;
    }
    if (!info || info.revokedAt || (info.expiresAt && info.expiresAt.getTime() <= this.now()))
      return null;
    return { tokenId: info.id, name: info.name, role: info.role };
  }

  /** Forgets what is remembered of a token, so its revocation holds in this process at once. */
  forget(tokenId: string): void {
    // A look-up still under way may be that token's: it is forgotten too, and asked again.
    for (const [key, entry] of this.entries) {
      if (entry.id === undefined || entry.id === tokenId) this.entries.delete(key);
    }
  }

  private remember(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
