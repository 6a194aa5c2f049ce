import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES_API } from '../../services/api/rest.ts';
import { servicesRouter } from '../../services/api/router.ts';
import { scheduleId } from '../../services/schedules.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { callOverHttp, serverErrorsOnRaw, type Kind } from '../support/fuzz.ts';
import { fuzzCallers, fuzzRest, fuzzTrpc, type FuzzOptions } from '../support/fuzz-run.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { routesOf } from '../support/rest-client.ts';
import { servicesClient, servicesServer } from '../support/services-server.ts';
import { until } from '../support/cloud-cluster.ts';
import { inputSchemas, validInputs } from '../support/zod-examples.ts';

// Every procedure of the service layer's API, by tRPC over HTTP and by each REST route, with
// inputs made from its own schemas and then broken, as the cloud's admin and as a project's
// member: no answer may be a 5xx, every 400 names the field it refuses, and a refused create
// leaves nothing behind (no service, no schedule, no token minted for it).
// VAGOTH_FUZZ_SEED=<seed> npx vitest run test/integration/services-fuzz.test.ts replays a run.
const SEED = Number(process.env.VAGOTH_FUZZ_SEED ?? Date.now() % 2 ** 31);

const procedures = servicesRouter._def.procedures as unknown as Record<
  string,
  { _def: { type: Kind } }
>;

/** Valid inputs of every procedure, from its schema, aimed at a few projects and names. */
const VALID = Object.fromEntries(
  Object.entries(inputSchemas(servicesRouter)).map(([path, schema]) => [
    path,
    validInputs(schema, {
      project: fc.constantFrom('fz-p1', 'fz-p2', 'fz-none'),
      name: fc.constantFrom('fz-s1', 'fz-s2', 'fz-s3'),
      image: fc.constantFrom('base', 'none'),
      network: fc.constant('default'),
    }),
  ]),
);

/** A refusal's message, as tRPC or REST answers it. */
function messageOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: string; error?: { message?: string } };
    return parsed.error?.message ?? parsed.message;
  } catch {
    return undefined;
  }
}

/** The service a create made, as tRPC or REST answers it. */
function madeBy(body: string): string {
  const parsed = JSON.parse(body) as {
    project?: string;
    name?: string;
    result?: { data?: object };
  };
  const made = (parsed.result?.data ?? parsed) as { project: string; name: string };
  return `${made.project}/${made.name}`;
}

/** The path of every string in a value. */
function stringPlaces(value: unknown, path: string[] = []): string[][] {
  if (typeof value === 'string') return [path];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => stringPlaces(v, [...path, k]));
}

/** `value` with the text at `path` replaced by `text`. */
function withText(value: unknown, path: string[], text: string): unknown {
  if (path.length === 0) return text;
  const [head, ...rest] = path as [string, ...string[]];
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string,
    unknown
  >;
  copy[head] = withText(copy[head], rest, text);
  return copy;
}

// "field.path: why", each issue; "input: why" for the input as a whole.
const NAMES_A_FIELD = /^(?:input|[\w$-]+(?:\.[\w$-]+)*): \S/;

let h: Harness;
let server: Awaited<ReturnType<typeof servicesServer>>;
const tokens: string[] = [];
/** Every service a create was answered with, by `project/name`. */
const made = new Set<string>();

const check: FuzzOptions['check'] = ({ procedure, status, body }) => {
  if (procedure === 'services.create' && status === 200) made.add(madeBy(body));
  if (status !== 400) return undefined;
  const message = messageOf(body) ?? '';
  const unnamed = message.split('; ').filter((m) => !NAMES_A_FIELD.test(m));
  return unnamed.length > 0 ? `400 names no field: ${message.slice(0, 200)}` : undefined;
};
const fuzz = () => ({ valid: VALID, tokens, seed: SEED, check });

beforeAll(async () => {
  h = await startHarness({ cloud: {} });
  server = await servicesServer(h);
  const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  tokens.push(...(await fuzzCallers(admin, h.cloud!.adminToken)));
}, 60_000);

afterAll(async () => {
  await server?.close();
  await h?.close();
});

/** Each service recorded, each schedule and each live token minted for one: what is left. */
async function leftBehind() {
  const rows = await h.sql<{ project: string; name: string; created_by: string }[]>`
    SELECT project, name, created_by FROM services.services ORDER BY project, name`;
  const services = rows.map((r) => `${r.project}/${r.name}`);
  const schedules: string[] = [];
  for await (const s of h.temporal.schedule.list()) schedules.push(s.scheduleId);
  const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  const minted: string[] = [];
  for (const user of ['admin', 'fz-u1']) {
    for (const t of await admin.tokens.list.query({ user })) {
      if (t.name.startsWith('service-') && t.revokedAt === null) {
        minted.push(`${t.project}/${t.name.slice('service-'.length)}`);
      }
    }
  }
  return { services, schedules: schedules.sort(), minted: minted.sort() };
}

describe(`every service procedure, fuzzed over HTTP (seed ${SEED})`, () => {
  it('has a valid example of every procedure, from its schema', () => {
    for (const [path, valid] of Object.entries(VALID)) {
      const schema = inputSchemas(servicesRouter)[path];
      for (const input of fc.sample(valid, { seed: SEED, numRuns: 20 })) {
        expect(schema?.safeParse(input).success ?? input === undefined, path).toBe(true);
      }
    }
    expect(Object.keys(VALID).sort()).toEqual(Object.keys(procedures).sort());
  });

  it('refuses what is not JSON with a 4xx, never a 500', async () => {
    expect(await serverErrorsOnRaw(server.trpcUrl, tokens[0]!, procedures)).toEqual([]);
  });

  it('answers every input by tRPC with no 5xx, and names the field of each 400', async () => {
    const run = await fuzzTrpc(server.trpcUrl, procedures, { ...fuzz(), runs: 60 });
    console.log(`services fuzz seed ${SEED}: ${run.calls} calls`, run.statuses);
    expect(run.problems, `seed ${SEED}`).toEqual([]);
  }, 240_000);

  it('answers every REST route alike', async () => {
    const doc = SERVICES_API.openApi();
    expect(new Set(routesOf(doc).map((r) => r.procedure))).toEqual(
      new Set(Object.keys(procedures)),
    );
    const run = await fuzzRest(server.origin, doc, { ...fuzz(), runs: 25 });
    console.log(`services REST fuzz seed ${SEED}: ${run.calls} calls`, run.statuses);
    expect(run.problems, `seed ${SEED}`).toEqual([]);
  }, 240_000);

  it('refuses text PostgreSQL cannot store in any field of a create, naming it', async () => {
    const wrong: string[] = [];
    const creates = fc.sample(VALID['services.create']!, { seed: SEED, numRuns: 5 });
    for (const [i, example] of creates.entries()) {
      const valid = { ...(example as object), project: 'fz-p1', name: `fz-t${i}` };
      for (const [path, bad] of stringPlaces(valid).flatMap((p) => [
        [p, 'a\u0000b'] as const,
        [p, 'x\ud800'] as const,
      ])) {
        const input = withText(valid, path, bad);
        const answer = await callOverHttp(
          server.trpcUrl,
          tokens[1]!,
          'services.create',
          input,
          'mutation',
        );
        const message = messageOf(answer.body) ?? '';
        if (answer.status !== 400 || !message.startsWith(`${path.join('.')}: `)) {
          wrong.push(`${path.join('.')} ${JSON.stringify(bad)}: ${answer.status} ${message}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    // A key no schema names is dropped, whatever it holds: it is neither refused nor echoed.
    const odd = await callOverHttp(
      server.trpcUrl,
      tokens[1]!,
      'services.get',
      { project: 'fz-p1', name: 'fz-none', 'S=\n': 'x\ud800' },
      'query',
    );
    expect(odd.status).toBe(404);
    expect(odd.body).not.toContain('S=');
  }, 120_000);

  it('leaves only the services whose create was answered, each with its schedule and token', async () => {
    const want = [...made].sort();
    console.log(`services fuzz seed ${SEED}: ${want.length} services made`);
    // Schedules are listed from Temporal's visibility store, which follows a moment behind.
    await until(
      'every service and only those with a schedule and a token',
      async () => {
        const left = await leftBehind();
        return (
          JSON.stringify(left) ===
          JSON.stringify({
            services: want,
            schedules: want.map((s) => scheduleId(...(s.split('/') as [string, string]))).sort(),
            minted: want,
          })
        );
      },
      async () => JSON.stringify({ want, left: await leftBehind() }),
    );
    // The layer still answers its callers.
    const member = servicesClient(server.trpcUrl, tokens[1]);
    expect(await member.services.list.query({ project: 'fz-p1' })).toHaveLength(
      want.filter((s) => s.startsWith('fz-p1/')).length,
    );
  }, 90_000);
});
