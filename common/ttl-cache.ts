interface Entry<V> {
  at: number;
  value: Promise<V>;
}

/**
 * Answers remembered for `ttlMs` (who a token stands for, a project's id by name), so a busy
 * caller costs no database round trip for them per call; calls that arrive together share one
 * look-up, a failed one is not remembered, and the least recently stored goes first when full.
 * The cloud forgets all of them on any change made through this process (cloud/api/trpc.ts),
 * so a revoked token, a disabled user or a membership holds here at once; a change made
 * through another process holds here within `ttlMs`.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, lookUp: () => Promise<V>): Promise<V> {
    if (this.ttlMs === 0) return lookUp();
    const now = this.now();
    let entry = this.entries.get(key);
    if (!entry || now - entry.at >= this.ttlMs) {
      entry = { at: now, value: lookUp() };
      this.entries.delete(key);
      this.entries.set(key, entry);
      while (this.entries.size > this.maxEntries) {
        this.entries.delete(this.entries.keys().next().value!);
      }
    }
    try {
      return await entry.value;
    } catch (err) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw err;
    }
  }

  /** Forgets everything: the next call for each key looks it up again. */
  clear(): void {
    this.entries.clear();
  }
}
