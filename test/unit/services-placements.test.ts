import { describe, expect, it } from 'vitest';
import type { Desired } from '../../services/plan.ts';
import {
  cloudsNamed,
  groupsOf,
  placementKey,
  planPlacements,
  type Placed,
} from '../../services/placements.ts';

const now = new Date('2026-12-06T12:00:00Z');

const desired = (replicas: number): Desired => ({
  replicas,
  revision: 'r1',
  rollout: { maxUnavailable: 0, maxSurge: 1 },
  unknownGraceMs: 60_000,
  unhealthyAfter: 3,
});

const member = (index: number, placement: string | null, more: Partial<Placed> = {}): Placed => ({
  name: `web-${index}`,
  index,
  revision: 'r1',
  state: 'running',
  createdAt: new Date(now.getTime() - (1000 - index) * 1000),
  placement,
  ...more,
});

describe('placements over clouds', () => {
  it.each([
    [{}, 'any'],
    [{ cluster: 'x' }, 'cluster:x'],
    [{ region: 'eu' }, 'region:eu'],
    [{ cloud: null, cluster: 'x' }, 'cluster:x'],
    [{ cloud: 'east' }, 'cloud:east'],
    [{ cloud: 'east', cluster: 'x' }, 'cloud:east/cluster:x'],
    [{ cloud: 'east', region: 'eu' }, 'cloud:east/region:eu'],
  ])('keys %j as %s (the own cloud’s keys as they always were)', (p, key) => {
    expect(placementKey(p)).toBe(key);
  });

  it('groups replicas by cloud and place, each knowing its cloud', () => {
    const groups = groupsOf({
      desired: { replicas: 6 },
      placements: [
        { replicas: 2 },
        { cloud: 'east', replicas: 1 },
        { cloud: 'east', cluster: 'x', replicas: 3 },
      ],
    });
    expect(groups).toEqual([
      { key: 'any', cloud: null, target: {}, replicas: 2 },
      { key: 'cloud:east', cloud: 'east', target: {}, replicas: 1 },
      { key: 'cloud:east/cluster:x', cloud: 'east', target: { cluster: 'x' }, replicas: 3 },
    ]);
    expect(groupsOf({ desired: { replicas: 3 } })).toEqual([
      { key: null, cloud: null, target: {}, replicas: 3 },
    ]);
    expect(
      cloudsNamed([
        { cloud: 'east', replicas: 1 },
        { replicas: 1 },
        { cloud: 'east', replicas: 2 },
      ]),
    ).toEqual(['east']);
    expect(cloudsNamed(null)).toEqual([]);
  });

  it('makes each cloud’s replicas with indexes held in no cloud', () => {
    const { plans, plan } = planPlacements(
      {
        desired: desired(4),
        placements: [{ replicas: 2 }, { cloud: 'east', replicas: 2 }],
      },
      [member(0, 'any')],
      // Another's web-1 in one cloud, web-3 in another: neither index is taken again.
      new Set([1, 3]),
      now,
    );
    expect(plans.map((p) => [p.group.key, p.group.cloud, p.plan.create])).toEqual([
      ['any', null, [2]],
      ['cloud:east', 'east', [4, 5]],
    ]);
    expect(plan.create).toEqual([2, 4, 5]);
    expect(plan.status).toMatchObject({ desired: 4, running: 1 });
  });

  it('scales one cloud to none without touching the other', () => {
    const members = [
      member(0, 'any'),
      member(1, 'any'),
      member(2, 'cloud:east'),
      member(3, 'cloud:east'),
    ];
    const { plan } = planPlacements(
      {
        desired: desired(2),
        placements: [{ replicas: 2 }, { cloud: 'east', replicas: 0 }],
      },
      members,
      new Set(),
      now,
    );
    expect(plan.create).toEqual([]);
    expect(plan.delete.map((d) => d.name).sort()).toEqual(['web-2', 'web-3']);
  });

  it('drops a cloud’s members once no placement names it, keeping the service up meanwhile', () => {
    const members = [member(0, 'cloud:east'), member(1, 'cloud:east')];
    const spec = { desired: desired(2), placements: [{ replicas: 2 }] };
    const first = planPlacements(spec, members, new Set(), now).plan;
    // Nothing of the new placement runs yet: the orphans stay until it does.
    expect(first.create).toEqual([2, 3]);
    expect(first.delete).toEqual([]);
    const later = planPlacements(
      spec,
      [...members, member(2, 'any'), member(3, 'any')],
      new Set(),
      now,
    ).plan;
    expect(later.delete.map((d) => [d.name, d.reason])).toEqual([
      ['web-0', 'its placement is no longer declared'],
      ['web-1', 'its placement is no longer declared'],
    ]);
  });

  it('replaces a silent cloud’s members only after the grace, in their own placement', () => {
    const silent = (since: number) =>
      [2, 3].map((n) =>
        member(n, 'cloud:east', {
          state: 'unknown',
          unknownSince: new Date(now.getTime() - since * 1000),
        }),
      );
    const spec = {
      desired: desired(4),
      placements: [{ replicas: 2 }, { cloud: 'east', replicas: 2 }],
    };
    const local = [member(0, 'any'), member(1, 'any')];
    const within = planPlacements(spec, [...local, ...silent(30)], new Set(), now).plan;
    expect(within.create).toEqual([]);
    expect(within.delete).toEqual([]);
    const after = planPlacements(spec, [...local, ...silent(90)], new Set(), now);
    expect(after.plans.map((p) => [p.group.key, p.plan.create])).toEqual([
      ['any', []],
      ['cloud:east', [4, 5]],
    ]);
  });

  it('replaces at most maxUnavailable failing their checks a step, across all its placements', () => {
    const sick = { failedChecks: 3 };
    const spec = {
      desired: desired(3),
      placements: [
        { cluster: 'a', replicas: 1 },
        { cluster: 'b', replicas: 1 },
        { cluster: 'c', replicas: 1 },
      ],
    };
    const members = [
      member(0, 'cluster:a', sick),
      member(1, 'cluster:b', sick),
      member(2, 'cluster:c', sick),
    ];
    const bySick = (p: { delete: { reason: string }[] }) =>
      p.delete.filter((d) => d.reason.includes('health checks'));
    expect(bySick(planPlacements(spec, members, new Set(), now).plan)).toHaveLength(1);
    // A member of a placement no longer declared that fails its checks takes from the same.
    const orphan = member(3, 'cluster:gone', sick);
    const withOrphan = planPlacements(spec, [...members, orphan], new Set(), now).plan;
    expect(bySick(withOrphan)).toHaveLength(1);
    // With two unavailable allowed, two go; a failed one goes besides, whatever the checks say.
    const two = {
      ...spec,
      desired: { ...desired(3), rollout: { maxUnavailable: 2, maxSurge: 1 } },
    };
    const failed = member(4, 'cluster:a', { state: 'failed' });
    const plan = planPlacements(two, [...members, failed], new Set(), now).plan;
    expect(bySick(plan)).toHaveLength(2);
    expect(plan.delete.map((d) => d.name)).toContain('web-4');
  });
});
