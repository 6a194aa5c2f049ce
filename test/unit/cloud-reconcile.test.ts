import { describe, expect, it } from 'vitest';
import { lostInstances } from '../../cloud/reconcile.ts';

const now = new Date('2026-12-06T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const GRACE = 10 * 60_000;

describe('lostInstances: which instances the cloud gives back', () => {
  it('gives back an accepted instance whose cluster has no VM, and keeps the ones it has', () => {
    const held = [
      { vmName: 'p.a', createdAt: ago(5_000), acceptedAt: ago(4_000) },
      { vmName: 'p.b', createdAt: ago(5_000), acceptedAt: ago(4_000) },
    ];
    const lost = lostInstances(held, new Set(['p.a']), now, GRACE);
    expect(lost).toEqual([{ instance: held[1], reason: 'its cluster has no VM p.b any more' }]);
  });

  it('waits out the grace for a create not yet taken, however the cluster answers', () => {
    const fresh = { vmName: 'p.c', createdAt: ago(GRACE - 1), acceptedAt: null };
    const stale = { vmName: 'p.d', createdAt: ago(GRACE), acceptedAt: null };
    expect(lostInstances([fresh], new Set(), now, GRACE)).toEqual([]);
    expect(lostInstances([stale], new Set(), now, GRACE)).toEqual([
      { instance: stale, reason: 'its cluster never made VM p.d (its create was not taken)' },
    ]);
    // Its VM there: not lost, accepted or not.
    expect(lostInstances([stale], new Set(['p.d']), now, GRACE)).toEqual([]);
  });

  it('answers nothing for nothing held', () => {
    expect(lostInstances([], new Set(['x.y']), now, GRACE)).toEqual([]);
  });
});
