import { describe, expect, it } from 'vitest';
import { whyUnplaceable } from '../../cloud/clusters/driver.ts';

describe('whyUnplaceable: why no host of a cluster takes a VM, as a project may be told', () => {
  it('says each kind of reason once, commonest first, with no host named nor figure given', () => {
    const why = whyUnplaceable({
      'hv-a': 'not enough memory (512 MiB free)',
      'hv-b': 'not enough memory (100 MiB free)',
      'hv-c': 'anti-affinity group shop.web already on this host',
      'hv-d': 'not enough vCPUs (2 free at ratio 4)',
      'hv-e': 'not enough memory (0 MiB free)',
    });
    expect(why).toBe(
      'not enough memory (3 hosts), anti-affinity group shop.web already on this host (1 host), ' +
        'not enough vCPUs (1 host)',
    );
    expect(why).not.toMatch(/hv-|512|100|ratio/);
  });

  it('gives at most three reasons, and says how many more there were', () => {
    const rejected = Object.fromEntries(
      ['a', 'b', 'c', 'd', 'e'].map((r, n) => [`hv-${n}`, `reason ${r}`]),
    );
    expect(whyUnplaceable(rejected)).toBe(
      'reason a (1 host), reason b (1 host), reason c (1 host), 2 more reasons',
    );
    expect(whyUnplaceable({})).toBe('it has no host');
  });
});
