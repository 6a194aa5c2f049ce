import { describe, expect, it } from 'vitest';
import { templateRevision } from '../../services/revision.ts';

describe('templateRevision', () => {
  const t = { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'a', ip: undefined }] };

  it('is the same for the same template, whatever the order of its keys', () => {
    const shuffled = { nics: [{ network: 'a' }], image: 'base', memoryMiB: 64, vcpus: 1 };
    expect(templateRevision(shuffled)).toBe(templateRevision(t));
    expect(templateRevision(t)).toMatch(/^r[0-9a-f]{12}$/);
  });

  it('changes with any value, and with the order of a list', () => {
    const seen = new Set([
      templateRevision(t),
      templateRevision({ ...t, memoryMiB: 65 }),
      templateRevision({ ...t, image: 'base2' }),
      templateRevision({ ...t, nics: [{ network: 'a' }, { network: 'b' }] }),
      templateRevision({ ...t, nics: [{ network: 'b' }, { network: 'a' }] }),
      templateRevision({ ...t, userData: '' }),
    ]);
    expect(seen.size).toBe(6);
  });
});
