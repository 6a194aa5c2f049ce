import { describe, expect, it } from 'vitest';
import { reconcilePlan } from '../../cloud/reconcile.ts';

const now = new Date('2026-12-06T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const GRACE = 10 * 60_000;
const accepted = (vmName: string) => ({ vmName, createdAt: ago(5_000), acceptedAt: ago(4_000) });
const untaken = (vmName: string, age: number) => ({
  vmName,
  createdAt: ago(age),
  acceptedAt: null,
});

describe('reconcilePlan: what the cloud does about a cluster’s instances', () => {
  it('gives back a taken instance whose cluster has no VM, and keeps the ones it has', () => {
    const held = [accepted('p.a'), accepted('p.b')];
    expect(reconcilePlan(held, new Set(['p.a']), now, GRACE)).toEqual({
      adopt: [],
      lost: [{ instance: held[1], reason: 'its cluster has no VM p.b any more' }],
      unsure: [],
    });
  });

  it('adopts a create whose answer never came once its VM is there, whatever its age', () => {
    const fresh = untaken('p.c', 1_000);
    const old = untaken('p.d', GRACE * 3);
    expect(reconcilePlan([fresh, old], new Set(['p.c', 'p.d']), now, GRACE)).toEqual({
      adopt: [fresh, old],
      lost: [],
      unsure: [],
    });
  });

  it('waits out the grace for a create not yet taken, then asks the cluster before giving it back', () => {
    const fresh = untaken('p.e', GRACE - 1);
    const stale = untaken('p.f', GRACE);
    expect(reconcilePlan([fresh, stale], new Set(), now, GRACE)).toEqual({
      adopt: [],
      lost: [],
      unsure: [stale],
    });
  });

  it('plans nothing for nothing held', () => {
    expect(reconcilePlan([], new Set(['x.y']), now, GRACE)).toEqual({
      adopt: [],
      lost: [],
      unsure: [],
    });
  });
});
