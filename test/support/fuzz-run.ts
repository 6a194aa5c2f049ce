import fc from 'fast-check';
import type { OpenAPIObject } from 'trpc-to-openapi';
import type { CloudClient } from './cloud-client.ts';
import { callOverHttp, mutated, pool, type Kind } from './fuzz.ts';
import { restRequest, routesOf } from './rest-client.ts';

// The fuzz of a layer's API (the cloud's, the service layer's): every procedure over tRPC and
// every REST route, with valid examples broken, from each token in turn, four at a time.

const REFUSED_WITHIN_MS = 2000;
const DONE_WITHIN_MS = 10_000;

export interface FuzzOptions {
  /** A valid input of each procedure, by path: what the fuzz breaks. */
  valid: Record<string, fc.Arbitrary<unknown>>;
  tokens: string[];
  seed: number;
  runs: number;
  /** 5xx answers that are not the API's own fault (the cloud's 502: a cluster is silent). */
  tolerated?: number[];
  /** Anything else wrong with an answer, in words; undefined when it is right. */
  check?(answer: {
    procedure: string;
    input: unknown;
    status: number;
    body: string;
  }): string | undefined;
}

export interface FuzzOutcome {
  calls: number;
  problems: string[];
  statuses: Record<number, number>;
}

/** What is wrong with an answer: a 5xx of the API's own, or slow, or what `check` says. */
function judge(
  options: FuzzOptions,
  answer: { procedure: string; input: unknown; status: number; body: string; ms: number },
): string | undefined {
  const fault = answer.status >= 500 && !(options.tolerated ?? []).includes(answer.status);
  if (fault || answer.ms > (answer.status < 400 ? DONE_WITHIN_MS : REFUSED_WITHIN_MS)) {
    return `${answer.status} in ${Math.round(answer.ms)} ms ${answer.body.slice(0, 200)}`;
  }
  return options.check?.(answer);
}

async function run<T>(
  calls: T[],
  call: (c: T, statuses: Map<number, number>) => Promise<string | undefined>,
): Promise<FuzzOutcome> {
  const problems: string[] = [];
  const statuses = new Map<number, number>();
  await pool(calls, 4, async (c) => {
    const problem = await call(c, statuses).catch((err: unknown) => String(err));
    if (problem) problems.push(problem);
  });
  return { calls: calls.length, problems, statuses: Object.fromEntries(statuses) };
}

/** Every procedure at `url` (tRPC over HTTP), `runs` broken inputs each, in a shuffled order. */
export async function fuzzTrpc(
  url: string,
  procedures: Record<string, { _def: { type: Kind } }>,
  options: FuzzOptions,
): Promise<FuzzOutcome> {
  const { valid, tokens, seed, runs } = options;
  const calls = Object.keys(procedures).flatMap((path, i) =>
    fc
      .sample(mutated(valid[path]!), { seed: seed + i, numRuns: runs })
      .map((input, j) => ({ path, input, token: tokens[j % tokens.length]! })),
  );
  const order = fc.sample(fc.shuffledSubarray(calls, { minLength: calls.length }), {
    seed,
    numRuns: 1,
  })[0]!;
  return run(order, async ({ path, input, token }, statuses) => {
    const shown = (JSON.stringify(input) ?? 'undefined').slice(0, 200);
    const answer = await callOverHttp(url, token, path, input, procedures[path]!._def.type);
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    const problem = judge(options, { ...answer, procedure: path, input });
    return problem && `${path} ${shown}: ${problem}`;
  });
}

/** Path segments a hostile client might send instead of a name. */
const JUNK = fc.constantFrom(
  '..',
  '%2e%2e',
  '%2F',
  '%00',
  '%E0%A4%A',
  'a'.repeat(5000),
  '%F0%9F%92%A9',
  '__proto__',
  'constructor',
  ' ',
);

/** Every route of `doc`, served under `origin`, `runs` broken inputs and junk paths each. */
export async function fuzzRest(
  origin: string,
  doc: OpenAPIObject,
  options: FuzzOptions,
): Promise<FuzzOutcome> {
  const { valid, tokens, seed, runs } = options;
  const base = `${origin}${(doc.servers ?? [])[0]?.url ?? ''}`;
  const calls = routesOf(doc).flatMap((r, i) =>
    fc
      .sample(fc.tuple(mutated(valid[r.procedure]!), JUNK, fc.boolean()), {
        seed: seed + 1000 + i,
        numRuns: runs,
      })
      .map(([input, junk, useJunk], j) => ({
        ...r,
        request: restRequest(base, r, input, useJunk ? junk : undefined),
        input,
        token: tokens[j % tokens.length]!,
      })),
  );
  return run(
    calls,
    async ({ procedure, request: { url, method, body }, input, token }, statuses) => {
      const started = performance.now();
      const res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const where = `${method} ${url.pathname.slice(0, 200)}${url.search.slice(0, 100)}`;
      const ms = performance.now() - started;
      // 431 is Node's own, before vagoth's: a URL past its 16 KiB of headers.
      if (
        res.status >= 400 &&
        res.status !== 431 &&
        !/^application\/json/.test(res.headers.get('content-type') ?? '')
      ) {
        return `${where}: ${res.status} not JSON`;
      }
      const problem = judge(options, { procedure, input, status: res.status, body: text, ms });
      return problem && `${where}: ${problem}`;
    },
  );
}

/**
 * Who a fuzz calls as: the cloud's admin (`adminToken`), and `fz-u1`, a member of project
 * `fz-p1`, made here.
 */
export async function fuzzCallers(admin: CloudClient, adminToken: string): Promise<string[]> {
  await admin.projects.create.mutate({ project: 'fz-p1' });
  await admin.users.create.mutate({ name: 'fz-u1' });
  await admin.projects.addMember.mutate({ project: 'fz-p1', user: 'fz-u1', role: 'member' });
  return [adminToken, (await admin.tokens.create.mutate({ name: 'fz', user: 'fz-u1' })).token];
}
