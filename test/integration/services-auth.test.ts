import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES_API } from '../../services/api/rest.ts';
import { servicesRouter } from '../../services/api/router.ts';
import type { ServicesMeta } from '../../services/api/trpc.ts';
import { errorCode } from '../support/api-client.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { restCall, restRequest, routesOf } from '../support/rest-client.ts';
import { servicesClient, servicesServer } from '../support/services-server.ts';
import { inputSchemas, validInputs } from '../support/zod-examples.ts';

type Who = 'none' | 'bad' | 'revoked' | 'other-member' | 'reader' | 'member' | 'admin';
const WHO: Who[] = ['none', 'bad', 'revoked', 'other-member', 'reader', 'member', 'admin'];

/** Every procedure of the service layer's router, by its path (`services.get`). */
const PROCEDURES = servicesRouter._def.procedures as unknown as Record<
  string,
  { _def: { meta?: ServicesMeta; type: 'query' | 'mutation' } }
>;

/**
 * A valid input of every procedure, made from its own schema, aimed at project `alpha` and a
 * service `matrix`: a new procedure gets one without a word here, and a field added to a
 * schema is filled in as the schema asks.
 */
const SAMPLES = Object.fromEntries(
  Object.entries(inputSchemas(servicesRouter)).map(([path, schema]) => [
    path,
    fc.sample(
      validInputs(schema, {
        project: fc.constant('alpha'),
        name: fc.constant('matrix'),
        image: fc.constant('base'),
        network: fc.constant('default'),
      }),
      { seed: 1, numRuns: 1 },
    )[0],
  ]),
);

/**
 * The rules, written out independently of services/api/trpc.ts: who may pass the door of a
 * procedure that needs `needs` in its project. `pass` is any answer but UNAUTHORIZED,
 * FORBIDDEN and the project's NOT_FOUND.
 */
function expected(
  meta: ServicesMeta,
  who: Who,
): 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'pass' {
  switch (who) {
    case 'none':
    case 'bad':
    case 'revoked':
      return 'UNAUTHORIZED';
    case 'other-member':
      return 'NOT_FOUND';
    case 'reader':
      return meta.needs === 'reader' ? 'pass' : 'FORBIDDEN';
    case 'member':
    case 'admin':
      return 'pass';
  }
}

/** What a refusal came to: its code, told apart when a NOT_FOUND is of something past the door. */
function classify(code: string, message: string): string {
  return code === 'NOT_FOUND' && !/^project /.test(message) ? 'NOT_FOUND:other' : code;
}

/** Past the door: anything but a refusal of the caller, or the server's own fault. */
const passed = (got: string) =>
  !['UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'INTERNAL_SERVER_ERROR'].includes(got) &&
  !got.startsWith('not an API error');

type AnyCall = (input: unknown) => Promise<unknown>;

describe('the service layer’s API: who may call what', () => {
  let h: Harness;
  let server: Awaited<ReturnType<typeof servicesServer>>;
  const tokens = {} as Record<Exclude<Who, 'none'>, string>;

  beforeAll(async () => {
    h = await startHarness({ cloud: {} });
    server = await servicesServer(h);
    const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    tokens.admin = h.cloud!.adminToken;
    await admin.projects.create.mutate({ project: 'alpha' });
    await admin.projects.create.mutate({ project: 'beta' });
    const userToken = async (user: string, project: string, role: 'member' | 'reader') => {
      await admin.users.create.mutate({ name: user });
      await admin.projects.addMember.mutate({ project, user, role });
      return admin.tokens.create.mutate({ name: user, user });
    };
    tokens.member = (await userToken('ann', 'alpha', 'member')).token;
    tokens.reader = (await userToken('rob', 'alpha', 'reader')).token;
    tokens['other-member'] = (await userToken('bea', 'beta', 'member')).token;
    const revoked = await userToken('rex', 'alpha', 'member');
    await admin.tokens.revoke.mutate({ id: revoked.id });
    tokens.revoked = revoked.token;
    tokens.bad = `vgc_${'x'.repeat(43)}`;
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await h?.close();
  });

  it('has a rule and a route for every procedure', () => {
    const procedures = Object.entries(PROCEDURES);
    expect(procedures.length).toBeGreaterThanOrEqual(8);
    for (const [path, p] of procedures) {
      expect(p._def.meta?.needs, `${path} has no rule`).toMatch(/^(reader|member)$/);
      expect(p._def.meta?.openapi, `${path} has no REST route`).toBeDefined();
    }
  });

  it('answers each caller of each procedure by tRPC as the rules say', async () => {
    const wrong: string[] = [];
    for (const [path, p] of Object.entries(PROCEDURES)) {
      for (const who of WHO) {
        const client = servicesClient(server.trpcUrl, who === 'none' ? undefined : tokens[who]);
        const [group, verb] = path.split('.') as [string, string];
        const calls = client as unknown as Record<string, Record<string, Record<string, AnyCall>>>;
        const call = calls[group]![verb]![p._def.type === 'query' ? 'query' : 'mutate']!;
        const got = await call(SAMPLES[path]).then(
          () => 'ok',
          (err: unknown) =>
            classify(errorCode(err) ?? `not an API error: ${String(err)}`, (err as Error).message),
        );
        const want = expected(p._def.meta!, who);
        if (want === 'pass' ? !passed(got) : got !== want) {
          wrong.push(`${path} as ${who}: ${got}, not ${want}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('answers each caller of each REST route alike', async () => {
    const wrong: string[] = [];
    for (const route of routesOf(SERVICES_API.openApi())) {
      const { url, method, body } = restRequest(server.restUrl, route, SAMPLES[route.procedure]);
      for (const who of WHO) {
        const answer = await restCall(url, method, who === 'none' ? undefined : tokens[who], body);
        const got =
          answer.status === 200
            ? 'ok'
            : classify(answer.body.code ?? String(answer.status), answer.body.message ?? '');
        const want = expected(PROCEDURES[route.procedure]!._def.meta!, who);
        if (want === 'pass' ? !passed(got) : got !== want) {
          wrong.push(`${method} ${route.route} as ${who}: ${got}, not ${want}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
