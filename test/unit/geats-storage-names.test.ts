import { describe, expect, it } from 'vitest';
import { geatsVolumes, isVolumeOf } from '../../drivers/geats/definition.ts';
import type { VmDefinition } from '../../registry/types.ts';

const ID = '0b5f3c1e-8f5a-4d8e-9a51-6e2f0f3b7d21';
const OTHER = '7d0c2a4b-1f3e-4c5d-8e9f-0a1b2c3d4e5f';
const definition = (diskGiB: number, image?: string) =>
  ({ vcpus: 1, memoryMiB: 256, diskGiB, nics: [], placement: {}, image }) as VmDefinition;

describe('geats storage names', () => {
  it.each([
    ['a disk', definition(1), [`web-1-root-${ID}`]],
    ['an image without a disk size', definition(0, 'debian-12'), [`web-1-root-${ID}`]],
    ['no storage', definition(0), []],
  ])("name %s for the VM's id", (_what, d, names) => {
    const volumes = geatsVolumes({ id: ID, name: 'web-1', definition: d });
    expect(volumes).toEqual(names.map((name) => ({ pool: 'geats', name })));
  });

  it.each([
    [`web-1-root-${ID}`, 'geats', true],
    // recorded for VMs created before names carried the id
    ['web-1-root', 'geats', true],
    [`web-1-root-${OTHER}`, 'geats', false],
    [`web-10-root-${ID}`, 'geats', false],
    ['db-1-root', 'geats', false],
    [`web-1-root-${ID}`, 'vagoth', false],
  ])("%s in pool %s is web-1's: %s", (name, pool, ours) => {
    expect(isVolumeOf({ id: ID, name: 'web-1' }, { pool, name })).toBe(ours);
  });
});
