import { describe, expect, it } from 'vitest';
import { cloudsActedMoreIn } from '../../services/cloud-tokens.ts';
import type { Placement } from '../../services/store.ts';

/**
 * Which other clouds a change makes a service do more in: there the caller's own credentials
 * are needed, as the token kept there was minted from someone else's.
 */
describe('cloudsActedMoreIn', () => {
  const at = (placements: Placement[] | null, revision = 'r1') => ({ placements, revision });
  const was = at([{ replicas: 2 }, { cloud: 'east', replicas: 2 }, { cloud: 'west', replicas: 1 }]);

  it('is none for a change that does no more in any other cloud', () => {
    expect(cloudsActedMoreIn(was, was)).toEqual([]);
    // Scaling down or leaving a cloud, more replicas in its own.
    expect(cloudsActedMoreIn(was, at([{ replicas: 5 }, { cloud: 'east', replicas: 1 }]))).toEqual(
      [],
    );
    expect(cloudsActedMoreIn(was, at(null))).toEqual([]);
  });

  it('names each cloud that gains replicas or a placement new there', () => {
    expect(
      cloudsActedMoreIn(
        was,
        at([{ replicas: 2 }, { cloud: 'east', replicas: 3 }, { cloud: 'west', replicas: 1 }]),
      ),
    ).toEqual(['east']);
    // The same count, moved to a cluster there: a placement new there.
    expect(
      cloudsActedMoreIn(
        was,
        at([
          { replicas: 2 },
          { cloud: 'east', replicas: 2 },
          { cloud: 'west', cluster: 'a', replicas: 1 },
        ]),
      ),
    ).toEqual(['west']);
    expect(cloudsActedMoreIn(at(null), at([{ cloud: 'north', replicas: 1 }]))).toEqual(['north']);
  });

  it('names every cloud its placements name for a new template', () => {
    expect(cloudsActedMoreIn(was, { ...was, revision: 'r2' })).toEqual(['east', 'west']);
    expect(cloudsActedMoreIn(at(null), at(null, 'r2'))).toEqual([]);
  });
});
