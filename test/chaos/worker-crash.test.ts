import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.ts';
import { decommissionAll, createBatch } from '../support/chaos-batch.ts';

const VMS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let env: ChaosEnv;
beforeAll(async () => {
  env = await startChaosEnv({ hosts: 4, worker: 'process' });
});
afterAll(async () => {
  await env?.close();
});

describe('the worker process killed three times during 100 creates', () => {
  it('leaves every VM running once on one host or cleanly gone, and nothing stuck', async () => {
    const worker = env.process!;
    const batch = createBatch(env, VMS, 'crash');
    let settled = false;
    void batch.then(
      () => (settled = true),
      () => (settled = true),
    );
    const running = async () => {
      const [row] = await env.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM nodes WHERE type = 'vm' AND metadata->>'state' = 'running'`;
      return row!.n;
    };
    // SIGKILL: no drain, activities lost mid-call; the next worker takes over from history.
    // Each kill waits for the batch to reach a share of its VMs, not for a time: how fast the
    // creates run depends on the machine, and a kill after the last one proves nothing.
    const runningAtKill: number[] = [];
    for (const share of [0.1, 0.4, 0.7]) {
      const deadline = Date.now() + 60_000;
      let n = await running();
      while (n < VMS * share && !settled && Date.now() < deadline) {
        await sleep(25);
        n = await running();
      }
      runningAtKill.push(n);
      await worker.kill('SIGKILL');
      await sleep(500);
      await worker.start();
    }
    expect(worker.starts).toBe(4);
    // The first kill lands mid-batch, or this test proves nothing.
    expect(runningAtKill[0]).toBeLessThan(VMS);
    const outcome = await batch;
    expect(await env.quiet()).toBe(true);

    expect(await env.violations()).toEqual([]);
    const vms = await env.api.vms.list();
    // Room for all of them: a crash is no reason for a create to fail.
    expect(vms.filter((v) => v.state === 'running')).toHaveLength(VMS);
    expect(outcome.refused).toEqual([]);

    // The checker sees a copy of a VM on a second host, so "no violations" above means something.
    const vm = vms[0]!;
    const other = env.cluster.hosts.find((h) => h.name !== vm.host)!;
    await other.driver.define({ id: vm.id, name: vm.name, definition: vm.definition });
    expect(await env.violations()).toContain(`vm ${vm.name} is running on 2 hosts`);
    await other.driver.undefine({ id: vm.id, name: vm.name });

    await decommissionAll(env);
  });
});
