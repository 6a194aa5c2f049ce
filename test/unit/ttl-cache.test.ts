import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../common/ttl-cache.ts';

/** A look-up that counts its calls and answers what `answer` holds at the time. */
function counted<V>(answer: { now: V }) {
  const calls: string[] = [];
  return {
    calls,
    lookUp: (key: string) => async () => {
      calls.push(key);
      await new Promise((r) => setTimeout(r, 5));
      return answer.now;
    },
  };
}

describe('TtlCache: what the cloud remembers of tokens and projects', () => {
  it('asks once per key within its time, once for calls that arrive together', async () => {
    let t = 0;
    const answer = { now: 'ann' as string | null };
    const { calls, lookUp } = counted(answer);
    const cache = new TtlCache<string | null>(1000, 10, () => t);
    const together = await Promise.all([1, 2, 3].map(() => cache.get('a', lookUp('a'))));
    expect(together).toEqual(['ann', 'ann', 'ann']);
    await cache.get('b', lookUp('b'));
    expect(calls).toEqual(['a', 'b']);
    t = 999;
    await cache.get('a', lookUp('a'));
    expect(calls).toEqual(['a', 'b']);
    // Past its time it asks again, and holds the new answer (revoked through another process).
    t = 1000;
    answer.now = null;
    expect(await cache.get('a', lookUp('a'))).toBeNull();
    expect(calls).toEqual(['a', 'b', 'a']);
  });

  it('forgets everything on clear', async () => {
    const { calls, lookUp } = counted({ now: 1 });
    const cache = new TtlCache<number>(60_000);
    await cache.get('a', lookUp('a'));
    await cache.get('b', lookUp('b'));
    cache.clear();
    await cache.get('a', lookUp('a'));
    await cache.get('b', lookUp('b'));
    expect(calls).toEqual(['a', 'b', 'a', 'b']);
  });

  it('remembers no failed look-up, and no more keys than it may', async () => {
    let fail = true;
    const calls: string[] = [];
    const cache = new TtlCache<string>(60_000, 2);
    const lookUp = (k: string) => async () => {
      calls.push(k);
      if (fail) throw new Error('database gone');
      return k;
    };
    await expect(cache.get('a', lookUp('a'))).rejects.toThrow('database gone');
    fail = false;
    await cache.get('a', lookUp('a'));
    await cache.get('b', lookUp('b'));
    await cache.get('c', lookUp('c')); // a goes: the oldest stored
    await cache.get('a', lookUp('a'));
    expect(calls).toEqual(['a', 'a', 'b', 'c', 'a']);
  });

  it('asks every time when it may remember nothing', async () => {
    const { calls, lookUp } = counted({ now: 1 });
    const cache = new TtlCache<number>(0);
    await cache.get('a', lookUp('a'));
    await cache.get('a', lookUp('a'));
    expect(calls).toEqual(['a', 'a']);
  });
});
