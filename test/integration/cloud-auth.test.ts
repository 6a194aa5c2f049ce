import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudRouter } from '../../cloud/api/router.ts';
import type { CloudMeta } from '../../cloud/api/trpc.ts';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { procedures, rawCall } from '../support/raw-call.ts';

/** What a call came to: `ok`, or the API code it was refused with. */
async function outcome(call: Promise<unknown>): Promise<string> {
  return call.then(
    () => 'ok',
    (err: unknown) => {
      const code = errorCode(err) ?? `not an API error: ${String(err)}`;
      // A NOT_FOUND of something other than the project itself: the door was passed.
      if (code === 'NOT_FOUND' && !/^project /.test((err as Error).message))
        return 'NOT_FOUND:other';
      return code;
    },
  );
}

/**
 * A valid input for every cloud procedure, aimed at project `alpha` where it names one and at
 * names that do not exist where an admin's call would change something shared: the matrix
 * checks who passes the door, and must not disable the admin or delete the project it uses.
 * A procedure with no entry here fails the test: each new one needs a rule and a case.
 */
const SAMPLES: Record<string, unknown> = {
  'clusters.register': {
    name: 'nowhere',
    driver: 'vagoth',
    url: 'http://127.0.0.1:9/trpc',
    token: `vgt_${'a'.repeat(43)}`,
  },
  'clusters.list': undefined,
  'clusters.get': { name: 'local' },
  'clusters.drain': { name: 'no-such-cluster' },
  'clusters.remove': { name: 'no-such-cluster' },
  'users.create': { name: 'matrix-user' },
  'users.list': undefined,
  'users.get': { user: 'ann' },
  'users.me': undefined,
  'users.disable': { user: 'no-such-user' },
  'projects.create': { project: 'matrix' },
  'projects.list': undefined,
  'projects.get': { project: 'alpha' },
  'projects.delete': { project: 'no-such-project' },
  'projects.addMember': { project: 'alpha', user: 'no-such-user', role: 'reader' },
  'projects.removeMember': { project: 'alpha', user: 'no-such-user' },
  'projects.events': { project: 'alpha' },
  'tokens.create': { name: 'matrix' },
  'tokens.list': {},
  'tokens.revoke': { id: '00000000-0000-4000-8000-000000000000' },
  'instances.create': {
    project: 'alpha',
    name: 'web-1',
    vcpus: 1,
    memoryMiB: 64,
    image: 'no-such-image',
    cluster: 'no-such-cluster',
  },
  'instances.get': { project: 'alpha', name: 'none' },
  'instances.list': { project: 'alpha' },
  'instances.start': { project: 'alpha', name: 'none' },
  'instances.stop': { project: 'alpha', name: 'none' },
  'instances.shutdown': { project: 'alpha', name: 'none' },
  'instances.reboot': { project: 'alpha', name: 'none' },
  'instances.reprovision': { project: 'alpha', name: 'none' },
  'instances.delete': { project: 'alpha', name: 'none' },
  'instances.operations': { project: 'alpha', name: 'none' },
  'instances.operation': { project: 'alpha', name: 'none', id: 'vm:alpha.none' },
  'quotas.set': { project: 'alpha' },
  'quotas.get': { project: 'alpha' },
  'networks.grant': { cluster: 'no-such-cluster', network: 'default', project: 'alpha' },
  'networks.revoke': { cluster: 'local', network: 'none', project: 'alpha' },
  'networks.list': { project: 'alpha' },
  'images.publish': { cluster: 'no-such-cluster', image: 'base' },
  'images.unpublish': { cluster: 'local', image: 'none' },
  'images.list': { project: 'alpha' },
  'events.list': { limit: 5 },
};

type Who =
  | 'none'
  | 'expired'
  | 'disabled'
  | 'other-member'
  | 'reader'
  | 'read-only-member'
  | 'member'
  | 'admin';
const WHO: Who[] = [
  'none',
  'expired',
  'disabled',
  'other-member',
  'reader',
  'read-only-member',
  'member',
  'admin',
];

/** Each caller's user, where it has one. */
const USER: Partial<Record<Who, string>> = {
  'other-member': 'bea',
  reader: 'rob',
  'read-only-member': 'mia',
  member: 'ann',
  admin: 'admin',
};

/**
 * The rules of the issue, written out independently of cloud/authorize.ts: who may pass the
 * door of a procedure with each rule. `pass` means any answer but UNAUTHORIZED and FORBIDDEN,
 * and, for a procedure on a project, an answer.
 */
function expected(
  meta: CloudMeta,
  who: Who,
  input: unknown,
): 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'pass' {
  if (who === 'none' || who === 'expired' || who === 'disabled') return 'UNAUTHORIZED';
  const { rule } = meta;
  switch (rule.kind) {
    case 'admin':
      return who === 'admin' ? 'pass' : 'FORBIDDEN';
    case 'user': {
      // A user other than the caller: an admin's business only.
      const named = (input as { user?: string } | undefined)?.user;
      if (named !== undefined && named !== USER[who] && who !== 'admin') return 'FORBIDDEN';
      return rule.write && who === 'read-only-member' ? 'FORBIDDEN' : 'pass';
    }
    case 'project':
      if (who === 'other-member') return 'NOT_FOUND';
      if (rule.needs === 'member' && (who === 'reader' || who === 'read-only-member')) {
        return 'FORBIDDEN';
      }
      return 'pass';
  }
}

/** Every procedure of the cloud's router, by its path (`projects.get`). */
const PROCEDURES = cloudRouter._def.procedures as unknown as Record<
  string,
  { _def: { meta?: CloudMeta; type: 'query' | 'mutation' } }
>;

type AnyCall = (input: unknown) => Promise<unknown>;

/** Calls `path` as the HTTP client would, whatever its type. */
function callOver(client: CloudClient, path: string, type: 'query' | 'mutation', input: unknown) {
  const [group, verb] = path.split('.') as [string, string];
  const procedures = client as unknown as Record<string, Record<string, Record<string, AnyCall>>>;
  return procedures[group]![verb]![type === 'query' ? 'query' : 'mutate']!(input);
}

describe('the cloud API: who may call what', () => {
  let h: Harness;
  const tokens = {} as Record<Exclude<Who, 'none'>, string>;
  let admin: CloudClient;

  beforeAll(async () => {
    h = await startHarness({ cloud: {} });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    tokens.admin = h.cloud!.adminToken;
    await admin.projects.create.mutate({ project: 'alpha' });
    await admin.projects.create.mutate({ project: 'beta' });
    const userToken = async (
      user: string,
      project: string | null,
      role: 'member' | 'reader',
      more: { readOnly?: boolean; expiresInSeconds?: number } = {},
    ) => {
      await admin.users.create.mutate({ name: user });
      if (project) await admin.projects.addMember.mutate({ project, user, role });
      return (await admin.tokens.create.mutate({ name: user, user, ...more })).token;
    };
    tokens.member = await userToken('ann', 'alpha', 'member');
    tokens.reader = await userToken('rob', 'alpha', 'reader');
    tokens['read-only-member'] = await userToken('mia', 'alpha', 'member', { readOnly: true });
    tokens['other-member'] = await userToken('bea', 'beta', 'member');
    tokens.expired = await userToken('eve', 'alpha', 'member', { expiresInSeconds: 1 });
    tokens.disabled = await userToken('dan', 'alpha', 'member');
    await admin.users.disable.mutate({ user: 'dan' });
    // Past the expired token's second.
    await new Promise((r) => setTimeout(r, 1100));
  });

  afterAll(async () => {
    await h?.close();
  });

  it('has a rule and a case for every procedure', () => {
    const procedures = Object.entries(PROCEDURES);
    expect(procedures.length).toBeGreaterThan(10);
    for (const [path, p] of procedures) {
      expect(p._def.meta?.rule, `${path} has no rule`).toBeDefined();
      expect(path in SAMPLES, `${path} has no case in this test`).toBe(true);
    }
  });

  it('answers each caller of each procedure as the rules say', async () => {
    const procedures = Object.entries(PROCEDURES);
    const wrong: string[] = [];
    for (const [path, p] of procedures) {
      for (const who of WHO) {
        const client = cloudClient(h.cloud!.url, who === 'none' ? undefined : tokens[who]);
        const got = await outcome(callOver(client, path, p._def.type, SAMPLES[path]));
        const want = expected(p._def.meta!, who, SAMPLES[path]);
        // Past the door, a project's procedure may still find no instance or cluster of that
        // name: NOT_FOUND then says so in words other than the project's.
        const passed =
          got !== 'UNAUTHORIZED' &&
          got !== 'FORBIDDEN' &&
          (p._def.meta!.rule.kind !== 'project' || got === 'ok' || got === 'NOT_FOUND:other');
        if (want === 'pass' ? !passed : got !== want) {
          wrong.push(`${path} as ${who}: ${got}, not ${want}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuses every cloud token on every cluster procedure, which stays its operators’ own', async () => {
    const wrong: string[] = [];
    for (const { path, type } of procedures()) {
      for (const who of WHO) {
        const headers: Record<string, string> =
          who === 'none' ? {} : { authorization: `Bearer ${tokens[who]}` };
        const got = await rawCall(h.apiUrl, path, type, {}, headers);
        if (got.code !== 'UNAUTHORIZED') wrong.push(`${path} as cloud ${who}: ${got.status}`);
      }
      // The cluster's own admin token passes its door (what it then answers is its own).
      const admin = await rawCall(h.apiUrl, path, type, {}, { authorization: `Bearer ${h.token}` });
      if (admin.code === 'UNAUTHORIZED' || admin.code === 'FORBIDDEN') {
        wrong.push(`${path} as cluster admin: ${admin.code}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
