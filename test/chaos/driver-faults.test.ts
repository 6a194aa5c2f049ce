import { afterEach, describe, expect, it } from 'vitest';
import { testDrivers as createDriver } from '../support/host-uris.ts';
import { createBatch, decommissionAll } from '../support/chaos-batch.ts';
import { startChaosEnv, type ChaosEnv } from '../support/chaos-env.ts';
import { randomFaults } from '../support/random-faults.ts';

const VMS = 60;
// A fixed seed per run of the suite would hide new interleavings; printed, so a failure replays.
const seed = Number(process.env.VAGOTH_CHAOS_SEED ?? Date.now() % 1_000_000);

let env: ChaosEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe(`libvirt hosts failing 10% of calls (seed ${seed})`, () => {
  it('transient faults, before or after the call lands: every create ends done or cleanly failed', async () => {
    const faults = randomFaults(createDriver, {
      rate: 0.1,
      kinds: ['unreachable', 'timeout'],
      seed,
    });
    env = await startChaosEnv({ hosts: 3, worker: { driverFactory: faults.factory } });
    faults.armed = true;
    const outcome = await createBatch(env, VMS, 'flaky');
    expect(outcome.refused).toEqual([]);
    expect(await env.violations()).toEqual([]);
    // Retries absorb transient faults; a VM fails only if one step exhausted its attempts.
    const vms = await env.api.vms.list();
    expect(vms.filter((v) => v.state === 'running').length).toBeGreaterThan(VMS * 0.9);
    await decommissionAll(env);
    const total = [...faults.injected.values()].reduce((a, b) => a + b, 0);
    // The faults really happened: about rate x calls of them (a third of that is far below
    // what any seed gives, so the check is not at the mercy of the draw).
    expect(total).toBeGreaterThan((faults.calls * 0.1) / 3);
    expect([...faults.injected.keys()].some((k) => k.endsWith(':after'))).toBe(true);
  });

  it('rejected defines and starts: those creates fail, compensated; the rest run', async () => {
    const faults = randomFaults(createDriver, {
      rate: 0.1,
      kinds: ['rejected'],
      operations: ['define', 'start'],
      seed,
    });
    env = await startChaosEnv({ hosts: 3, worker: { driverFactory: faults.factory } });
    faults.armed = true;
    const outcome = await createBatch(env, VMS, 'refused');
    expect(outcome.refused).toEqual([]);
    expect(await env.violations()).toEqual([]);
    const rejections = [...faults.injected.values()].reduce((a, b) => a + b, 0);
    const vms = await env.api.vms.list();
    const running = vms.filter((v) => v.state === 'running').length;
    // Each rejection sinks one create (a VM is defined and started once); failed ones either
    // are removed or stay `failed` with no domain, which violations() already checked.
    expect(running).toBe(VMS - rejections);
    expect(rejections).toBeGreaterThan(0);
    await decommissionAll(env);
  });
});
