import { expect } from 'vitest';
import type { ChaosEnv } from './chaos-env.ts';

export interface BatchOutcome {
  /** Names the API accepted (claimed). */
  accepted: string[];
  /** Names the API refused, with why. */
  refused: Array<{ name: string; error: string }>;
}

/**
 * Fires `count` creates at once through the API, then waits until every VM has settled
 * (running or failed) and nothing but entity workflows runs. Waits on the registry and
 * Temporal's list of open workflows, not on a workflow's result: it holds whatever shape the
 * VM workflows take.
 */
export async function createBatch(
  env: ChaosEnv,
  count: number,
  prefix: string,
): Promise<BatchOutcome> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const results = await Promise.allSettled(
    names.map((name) =>
      env.api.vms.create({ name, vcpus: 1, memoryMiB: 64, nics: [{ network: 'default' }] }),
    ),
  );
  const outcome: BatchOutcome = { accepted: [], refused: [] };
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') outcome.accepted.push(names[i]!);
    else outcome.refused.push({ name: names[i]!, error: String(r.reason) });
  });
  await settle(env, (states) => states.every((s) => s === 'running' || s === 'failed'));
  return outcome;
}

/** Polls until `done` holds for the VMs' states and nothing but entity workflows runs. */
export async function settle(
  env: ChaosEnv,
  done: (states: string[]) => boolean,
  timeoutMs = 300_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = (await env.api.vms.list()).map((v) => v.state);
    if (done(states) && (await env.quiet(0))) return;
    if (Date.now() > deadline)
      throw new Error(`not settled after ${timeoutMs} ms: ${states.join(',')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Decommissions every VM through the API and checks that everything they held is released. */
export async function decommissionAll(env: ChaosEnv): Promise<void> {
  const vms = await env.api.vms.list();
  await Promise.all(vms.map((vm) => env.api.vms.decommission({ name: vm.name })));
  await settle(env, (states) => states.length === 0);
  expect(await env.violations({})).toEqual([]);
  const [held] = await env.sql<{ keys: number; allocations: number }[]>`
    SELECT (SELECT count(*)::int FROM node_keys k JOIN nodes n ON n.id = k.node_id WHERE n.type = 'vm') AS keys,
           (SELECT count(*)::int FROM allocations) AS allocations`;
  expect(held).toEqual({ keys: 0, allocations: 0 });
  for (const host of await env.api.hosts.list()) {
    expect(host.allocated).toMatchObject({ vcpus: 0, memoryMiB: 0 });
  }
  for (const [host, status] of await env.cluster.statuses()) {
    expect(
      status.domains.filter((d) => d.vagothId !== null),
      host,
    ).toEqual([]);
  }
}
