import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planReconcile, type Desired, type Observed, type Seen } from '../../services/plan.ts';

const now = new Date('2026-12-06T12:00:00Z');
const at = (s: number) => new Date(now.getTime() - s * 1000);

const desired = (more: Partial<Desired> = {}): Desired => ({
  replicas: 3,
  revision: 'r2',
  rollout: { maxUnavailable: 0, maxSurge: 1 },
  unknownGraceMs: 60_000,
  unhealthyAfter: 3,
  ...more,
});

const inst = (index: number, more: Partial<Observed> = {}): Observed => ({
  name: `web-${index}`,
  index,
  revision: 'r2',
  state: 'running',
  createdAt: at(1000 - index),
  ...more,
});

describe('planReconcile: one reconcile of a service', () => {
  it('creates the replicas from nothing, and deletes the newest when scaled down', () => {
    expect(planReconcile(desired({ replicas: 5 }), [], now).create).toEqual([0, 1, 2, 3, 4]);
    const five = [0, 1, 2, 3, 4].map((n) => inst(n));
    const down = planReconcile(desired({ replicas: 2 }), five, now);
    expect(down.create).toEqual([]);
    expect(down.delete.map((d) => d.name)).toEqual(['web-4', 'web-3', 'web-2']);
    expect(planReconcile(desired({ replicas: 0 }), five, now).delete).toHaveLength(5);
    expect(planReconcile(desired({ replicas: 5 }), five, now)).toMatchObject({
      create: [],
      delete: [],
      status: { desired: 5, running: 5, pending: 0, dead: 0, outdated: 0 },
    });
  });

  it('replaces the dead at once, under a name not in use, and says why each goes', () => {
    const seen = [
      inst(0, { state: 'failed' }),
      inst(1, { state: 'missing' }),
      inst(2, { hostDown: true }),
      inst(3, { failedChecks: 3 }),
      inst(4, { failedChecks: 2 }),
    ];
    const plan = planReconcile(desired({ replicas: 5 }), seen, now);
    expect(plan.delete).toEqual([
      { name: 'web-0', reason: 'it failed' },
      { name: 'web-1', reason: 'its VM is gone from its cluster' },
      { name: 'web-2', reason: 'its host is down' },
      { name: 'web-3', reason: 'it failed 3 health checks in a row' },
    ]);
    expect(plan.create).toEqual([5, 6, 7, 8]);
    expect(plan.status).toMatchObject({ running: 1, pending: 4, dead: 4 });
  });

  it('waits out a silent cluster’s grace before replacing its instances', () => {
    const seen = [inst(0), inst(1, { state: 'unknown', unknownSince: at(30) })];
    expect(planReconcile(desired({ replicas: 2 }), seen, now)).toMatchObject({
      create: [],
      delete: [],
    });
    seen[1]!.unknownSince = at(60);
    const plan = planReconcile(desired({ replicas: 2 }), seen, now);
    expect(plan.delete).toEqual([
      { name: 'web-1', reason: 'its cluster has not answered for 60 s' },
    ]);
    expect(plan.create).toEqual([2]);
  });

  it('keeps to a decision to delete until it is carried out, whatever the instance does', () => {
    // Its cluster was silent past the grace, its delete refused; it answers again, running.
    const seen = [inst(0), inst(1, { retiring: 'its cluster has not answered for 60 s' }), inst(2)];
    const plan = planReconcile(desired({ replicas: 2 }), seen, now);
    expect(plan.delete).toEqual([
      { name: 'web-1', reason: 'its cluster has not answered for 60 s' },
    ]);
    expect(plan.create).toEqual([]);
  });

  it('names new instances clear of the indexes the service holds elsewhere', () => {
    const plan = planReconcile(desired({ replicas: 3 }), [inst(1)], now, new Set([0, 2, 3]));
    expect(plan.create).toEqual([4, 5]);
  });

  it('rolls a template forward one surge at a time, never below the replicas running', () => {
    const d = desired({ replicas: 2 });
    let seen = [inst(0, { revision: 'r1' }), inst(1, { revision: 'r1' })];
    // Tick 1: one new one, no old one goes yet.
    let plan = planReconcile(d, seen, now);
    expect(plan).toMatchObject({ create: [2], delete: [] });
    seen = [...seen, inst(2, { state: 'pending' })];
    // While it starts, nothing more.
    expect(planReconcile(d, seen, now)).toMatchObject({ create: [], delete: [] });
    // It runs: the oldest old one goes, and the next new one comes.
    seen[2]!.state = 'running';
    plan = planReconcile(d, seen, now);
    expect(plan.delete).toEqual([{ name: 'web-0', reason: 'its template is outdated (r1)' }]);
    expect(plan.create).toEqual([3]);
  });
});

/**
 * A world the plans act on: deleted instances vanish, created ones start pending, and each tick
 * the pending ones named by `starts` begin running. Whatever the shape, a rollout never runs
 * fewer than it may nor holds more than it may, and it ends on the new template.
 */
describe('planReconcile over many ticks', () => {
  it('keeps the rollout bounds and converges, whatever the replicas, bounds and start', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.constantFrom<Seen>('running', 'pending'), { maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        (replicas, maxSurge, maxUnavailable, start, starts) => {
          const d = desired({ replicas, rollout: { maxSurge, maxUnavailable } });
          let seen: Observed[] = start.map((state, n) => inst(n, { state, revision: 'r1' }));
          const effective = maxSurge === 0 && maxUnavailable === 0 ? 1 : maxUnavailable;
          const floor = Math.min(
            seen.filter((i) => i.state === 'running').length,
            Math.max(0, replicas - effective),
          );
          const ceiling = Math.max(seen.length, replicas + maxSurge);
          for (let tick = 0; tick < 200; tick++) {
            const plan = planReconcile(d, seen, now);
            const goes = new Set(plan.delete.map((x) => x.name));
            seen = seen.filter((i) => !goes.has(i.name));
            // Running never drops below the floor, and nothing is created past the ceiling.
            expect(seen.filter((i) => i.state === 'running').length).toBeGreaterThanOrEqual(floor);
            seen.push(
              ...plan.create.map((n) => inst(n, { state: 'pending', createdAt: at(-tick) })),
            );
            expect(seen.length).toBeLessThanOrEqual(ceiling);
            if (plan.create.length === 0 && plan.delete.length === 0) {
              if (seen.every((i) => i.state === 'running')) break;
            }
            // Some of the pending start this tick (all of them every fourth tick).
            seen = seen.map((i) =>
              i.state === 'pending' && (starts[tick % starts.length] || tick % 4 === 3)
                ? { ...i, state: 'running' }
                : i,
            );
          }
          expect(seen).toHaveLength(replicas);
          expect(seen.every((i) => i.revision === 'r2' && i.state === 'running')).toBe(true);
          expect(new Set(seen.map((i) => i.name)).size).toBe(replicas);
        },
      ),
      { numRuns: 500 },
    );
  });
});
