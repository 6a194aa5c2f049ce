// bench/api's measuring: tRPC queries by plain fetch (the same client for the cloud's API and
// the cluster's), and runs of a call, its cluster-side baseline and its bare SELECT
// interleaved round by round, so a machine that slows down slows all three alike.
import { percentile, runClients } from './support.ts';

/** A tRPC endpoint called over HTTP with a bearer token; `query` answers the result's data. */
export function trpc(url: string, token: string) {
  const headers = { authorization: `Bearer ${token}` };
  return {
    async query(path: string, input: unknown): Promise<unknown> {
      const query = encodeURIComponent(JSON.stringify(input));
      const res = await fetch(`${url}/${path}?input=${query}`, { headers });
      const body = (await res.json()) as { result: { data: unknown } };
      if (!res.ok) throw new Error(`${path}: ${JSON.stringify(body)}`);
      return body.result.data;
    },
  };
}

export type Side = 'cloud' | 'cluster' | 'select';
export const SIDES: readonly Side[] = ['cloud', 'cluster', 'select'];

/** A call as the cloud serves it, the same on the cluster's API, and its bare SELECT. */
export interface Comparison {
  label: string;
  /** What the cluster-side baseline is, when not the same verb. */
  note?: string;
  calls: Record<Side, (i: number) => Promise<unknown>>;
  /** Calls by one client per round (latency). */
  requests: number;
  /** Calls by `clients` concurrent clients per round (throughput); 0: none. */
  loaded: number;
}

export interface Figures {
  latencies: number[];
  /** Calls made and seconds spent under load. */
  loadedCalls: number;
  loadedSeconds: number;
}

/**
 * Runs every comparison `rounds` times, its three sides in an order that turns each round (so
 * none always runs first, after the other's garbage), after a round unrecorded to warm up.
 */
export async function measure(
  comparisons: Comparison[],
  options: { rounds: number; clients: number },
): Promise<Map<string, Record<Side, Figures>>> {
  const out = new Map<string, Record<Side, Figures>>();
  const blank = (): Figures => ({ latencies: [], loadedCalls: 0, loadedSeconds: 0 });
  for (const c of comparisons)
    out.set(c.label, { cloud: blank(), cluster: blank(), select: blank() });
  for (let round = -1; round < options.rounds; round++) {
    for (const c of comparisons) {
      for (let s = 0; s < SIDES.length; s++) {
        const side = SIDES[(s + Math.max(round, 0)) % SIDES.length]!;
        const call = c.calls[side];
        const requests = round < 0 ? Math.min(c.requests, 20) : c.requests;
        const latencies = await runClients(requests, 1, async (i) => void (await call(i)));
        const t0 = performance.now();
        const loaded = round < 0 ? Math.min(c.loaded, 200) : c.loaded;
        if (loaded > 0) {
          await runClients(loaded, options.clients, async (i) => void (await call(i)));
        }
        if (round < 0) continue;
        const f = out.get(c.label)![side];
        f.latencies.push(...latencies);
        f.loadedCalls += loaded;
        f.loadedSeconds += (performance.now() - t0) / 1000;
      }
    }
  }
  for (const sides of out.values())
    for (const f of Object.values(sides)) f.latencies.sort((a, b) => a - b);
  return out;
}

export const p50 = (f: Figures) => percentile(f.latencies, 50);
export const p99 = (f: Figures) => percentile(f.latencies, 99);
export const rate = (f: Figures) => (f.loadedCalls > 0 ? f.loadedCalls / f.loadedSeconds : NaN);

const cell = (x: number, digits = 2, width = 9) =>
  (Number.isNaN(x) ? '-' : x.toFixed(digits)).padStart(width);
const times = (x: number) => (Number.isNaN(x) ? '-' : `${x.toFixed(2)}x`).padStart(9);

/**
 * The table: p50 and p99 (ms, one client) and calls/s (`clients` at once) per side, and the
 * cloud's cost against each baseline as a ratio of times (calls/s inverted: > 1 is slower).
 */
export function printTable(
  comparisons: Comparison[],
  figures: Map<string, Record<Side, Figures>>,
  clients: number,
) {
  console.log(
    `${'call'.padEnd(34)}${'side'.padEnd(15)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${`req/s@${clients}`.padStart(11)}`,
  );
  for (const c of comparisons) {
    const f = figures.get(c.label)!;
    const names: Record<Side, string> = { cloud: 'cloud', cluster: 'cluster', select: 'SELECT' };
    SIDES.forEach((side, i) =>
      console.log(
        `${(i === 0 ? c.label : '').padEnd(34)}${names[side].padEnd(15)}${cell(p50(f[side]))}${cell(p99(f[side]))}${cell(rate(f[side]), 0, 11)}`,
      ),
    );
    for (const base of ['cluster', 'select'] as const) {
      const ratio = (m: (f: Figures) => number) => m(f.cloud) / m(f[base]);
      console.log(
        `${''.padEnd(34)}${`cloud/${names[base]}`.padEnd(15)}${times(ratio(p50))}${times(ratio(p99))}${times(1 / ratio(rate)).padStart(11)}`,
      );
    }
    if (c.note) console.log(`${''.padEnd(34)}(cluster: ${c.note})`);
  }
}
