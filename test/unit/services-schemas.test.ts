import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { checkOtherClouds } from '../../services/api/other-clouds.ts';
import { serviceCreateInput, serviceUpdateInput } from '../../services/api/schemas.ts';
import { otherClouds } from '../../services/clouds/index.ts';
import type { Placement } from '../../services/store.ts';

const base = {
  project: 'shop',
  name: 'web',
  template: { vcpus: 1, memoryMiB: 64, image: 'base' },
};
/** The fields a refusal names, each with its reason. */
const refusal = (input: unknown, schema: z.ZodType = serviceCreateInput) => {
  const parsed = schema.safeParse(input);
  return parsed.success
    ? null
    : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('what a service may declare', () => {
  it('takes replicas, or placements that add up to them', () => {
    expect(refusal({ ...base, replicas: 3 })).toBeNull();
    expect(refusal({ ...base, placements: [{ cluster: 'east', replicas: 2 }] })).toBeNull();
    expect(refusal(base)).toEqual(['replicas: is required (or placements)']);
    expect(
      refusal({ ...base, replicas: 3, placements: [{ cluster: 'east', replicas: 2 }] }),
    ).toEqual(['placements: must add up to replicas (3), not 2']);
  });

  it('refuses placements the cloud could never meet', () => {
    expect(refusal({ ...base, placements: [{ cluster: 'East.1', replicas: 1 }] })).toEqual([
      "placements.0.cluster: must be a cluster name: lower-case letters, digits or '-'",
    ]);
    expect(
      refusal({
        ...base,
        placements: [
          { cluster: 'east', replicas: 1 },
          { cluster: 'east', replicas: 1 },
        ],
      }),
    ).toEqual(['placements.1: names cluster east twice']);
    expect(
      refusal({ ...base, placements: [{ cluster: 'east', region: 'eu', replicas: 1 }] }),
    ).toEqual(['placements.0.region: name a cluster or a region, not both']);
    expect(
      refusal({ ...base, spread: 'cluster', placements: [{ cluster: 'east', replicas: 2 }] }),
    ).toEqual([
      "placements.0.replicas: puts more than one replica in one cluster, which spread 'cluster' forbids",
    ]);
    expect(
      refusal({ ...base, placements: [{ cluster: 'east', replicas: 1, rack: 'x' }] }),
    ).not.toBeNull();
  });

  it('takes a health check of a port or of a plain path, nothing that names another host', () => {
    expect(refusal({ ...base, replicas: 1, health: { tcp: 80 } })).toBeNull();
    expect(
      refusal({ ...base, replicas: 1, health: { http: { port: 80, path: '/healthz?x=1' } } }),
    ).toBeNull();
    for (const path of ['healthz', 'http://10.0.0.1/', '/a b', '/\n']) {
      expect(
        refusal({ ...base, replicas: 1, health: { http: { port: 80, path } } }),
      ).not.toBeNull();
    }
    expect(refusal({ ...base, replicas: 1, health: { tcp: 0 } })).not.toBeNull();
    expect(refusal({ ...base, replicas: 1, health: { tcp: 80, host: '10.0.0.1' } })).not.toBeNull();
  });

  it('changes the period, the check and the placements on update', () => {
    expect(
      refusal({ project: 'shop', name: 'web', everySeconds: 10 }, serviceUpdateInput),
    ).toBeNull();
    expect(
      refusal({ project: 'shop', name: 'web', everySeconds: 1 }, serviceUpdateInput),
    ).not.toBeNull();
    expect(
      refusal(
        { project: 'shop', name: 'web', replicas: 2, placements: [{ region: 'eu', replicas: 3 }] },
        serviceUpdateInput,
      ),
    ).toEqual(['placements: must add up to replicas (2), not 3']);
  });
});

describe('placements in other clouds, and the credentials for them', () => {
  const east = { token: 'vgc_abc', project: 'shop' };
  const two = {
    ...base,
    placements: [{ replicas: 2 }, { cloud: 'east', replicas: 2 }],
    clouds: { east },
  };

  it('takes a cloud by name, never a URL or a path', () => {
    expect(refusal(two)).toBeNull();
    for (const cloud of ['https://evil.example/cloud/trpc', '../east', 'East', 'east/x', '']) {
      expect(refusal({ ...base, placements: [{ cloud, replicas: 1 }] })).toEqual([
        "placements.0.cloud: must be a cloud name: lower-case letters, digits or '-'",
      ]);
    }
    expect(
      refusal({
        ...base,
        placements: [
          { cloud: 'east', cluster: 'x', replicas: 1 },
          { cloud: 'east', cluster: 'x', replicas: 1 },
        ],
      }),
    ).toEqual(['placements.1: names cloud east, cluster x twice']);
    // The same cluster name in two clouds is two places.
    expect(
      refusal({
        ...base,
        placements: [
          { cluster: 'x', replicas: 1 },
          { cloud: 'east', cluster: 'x', replicas: 1 },
        ],
      }),
    ).toBeNull();
  });

  it('bounds the credentials: a token of printable ASCII up to 256, a project name, 16 clouds', () => {
    const with_ = (clouds: unknown) => refusal({ ...two, clouds });
    expect(with_({ east: { ...east, token: 'x'.repeat(257) } })).toEqual([
      'clouds.east.token: Too big: expected string to have <=256 characters',
    ]);
    expect(with_({ east: { ...east, token: 'a b' } })).toEqual([
      'clouds.east.token: must be a token: printable ASCII, no spaces',
    ]);
    expect(with_({ east: { ...east, token: 'a\r\nx-evil: 1' } })).toEqual([
      'clouds.east.token: must be a token: printable ASCII, no spaces',
    ]);
    expect(with_({ east: { ...east, project: 'Shop/..' } })).toEqual([
      'clouds.east.project: must be a project name',
    ]);
    expect(with_({ east: { ...east, url: 'http://evil.example/' } })).not.toBeNull();
    expect(with_({ 'http://evil.example': east })).not.toBeNull();
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, n) => [`c${n}`, east]));
    expect(with_(many)).toEqual(['clouds: must name at most 16 clouds']);
    expect(refusal({ ...two, name: 'web' }, serviceUpdateInput)).toBeNull();
  });
});

describe('which clouds a service may name, before any is asked', () => {
  const allowed = otherClouds({ east: 'http://east.example/cloud/trpc' }, 1_000);
  const check = (
    placements: Placement[] | null,
    given: Record<string, { token: string; project: string }>,
    everyOneNeeded = true,
  ) => {
    try {
      checkOtherClouds(allowed, placements, given, { everyOneNeeded });
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  };
  const cred = { token: 'vgc_x', project: 'shop' };

  it('refuses a cloud the operator did not allow, naming the placement', () => {
    expect(check([{ cloud: 'east', replicas: 1 }], { east: cred })).toBeNull();
    expect(check([{ replicas: 1 }, { cloud: 'west', replicas: 1 }], { west: cred })).toMatch(
      /^placements\.1\.cloud: no cloud "west" is known here/,
    );
    // No built-in of objects is a cloud.
    for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
      expect(check([{ cloud: name, replicas: 1 }], { [name]: cred })).toMatch(
        /^placements\.0\.cloud: /,
      );
      expect(allowed.driver(name, 'x')).toBeUndefined();
    }
  });

  it('sends a token only to the URL that minted it', () => {
    const url = allowed.urlOf('east')!;
    expect(url).toMatch(/^http/);
    expect(allowed.driver('east', 'x', url)).toBeDefined();
    // Minted before URLs were recorded: the name's URL now.
    expect(allowed.driver('east', 'x', null)).toBeDefined();
    // The operator pointed east elsewhere since: the token goes nowhere.
    expect(allowed.driver('east', 'x', 'http://127.0.0.1:1/cloud/trpc')).toBeUndefined();
    expect(allowed.urlOf('constructor')).toBeUndefined();
  });

  it('takes credentials only for the clouds placements name, and on a create needs them all', () => {
    expect(check([{ replicas: 1 }], { east: cred })).toBe(
      'clouds.east: no placement names cloud east',
    );
    expect(check(null, { east: cred }, false)).toBe('clouds.east: no placement names cloud east');
    expect(check([{ cloud: 'east', replicas: 1 }], {})).toMatch(/^clouds\.east: is required/);
    // An update needs them only for a cloud new to the service (its store says which).
    expect(check([{ cloud: 'east', replicas: 1 }], {}, false)).toBeNull();
  });
});
