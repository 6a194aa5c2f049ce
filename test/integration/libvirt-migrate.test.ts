import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants as C } from '../../native/libvirt/index.ts';
import type { DomainSpec, DomainState } from '../../drivers/driver.ts';
import {
  driverFailure as failure,
  foreignDomainXml,
  SimulatedHosts,
  vmSpec,
  type SimulatedHost,
} from '../support/libvirt-hosts.ts';

let hosts: SimulatedHosts;
beforeAll(async () => {
  hosts = await SimulatedHosts.create();
});
afterAll(async () => {
  await hosts?.close();
});

/** Where the VM is, host by host: its state and vagoth id there. */
async function whereIs(spec: DomainSpec, ...on: SimulatedHost[]) {
  const found: [string, DomainState, string | null][] = [];
  for (const h of on) {
    const info = await h.driver.info(spec.name);
    if (info) found.push([h.name, info.state, info.vagothId]);
  }
  return found;
}

async function pair() {
  return { a: await hosts.add(), b: await hosts.add() };
}

async function deployed(on: SimulatedHost, running = true): Promise<DomainSpec> {
  const spec = vmSpec({ nics: [{ network: 'default', mac: '52:54:00:12:34:56' }] });
  await on.driver.define(spec);
  if (running) await on.driver.start(spec.name);
  return spec;
}

describe('migrate between two simulated hosts', () => {
  it('moves a running VM cold (the test driver cannot live-migrate) to exactly one host', async () => {
    const { a, b } = await pair();
    const spec = await deployed(a);
    // Asked live (the default), moved cold: the result says so, and why.
    expect(await a.driver.migrate(spec, b.address)).toEqual({
      live: false,
      note: `not live: the hosts cannot migrate live (libvirt error ${C.VIR_ERR_NO_SUPPORT}); moved cold`,
    });
    expect(await whereIs(spec, a, b)).toEqual([[b.name, 'running', spec.id]]);
    expect((await b.driver.info(spec.name))?.macs).toEqual(['52:54:00:12:34:56']);
    expect(await a.driver.migrate(spec, b.address)).toEqual({ live: false });
    expect(await whereIs(spec, a, b)).toEqual([[b.name, 'running', spec.id]]);
  });

  it('keeps a stopped VM stopped', async () => {
    const { a, b } = await pair();
    const spec = await deployed(a, false);
    await a.driver.migrate(spec, b.address);
    expect(await whereIs(spec, a, b)).toEqual([[b.name, 'stopped', spec.id]]);
  });

  it.each(['define on target', 'power off source', 'start on target', 'undefine source', 'done'])(
    'finishes the move when retried after an interruption at "%s"',
    async (step) => {
      const { a, b } = await pair();
      const spec = await deployed(a);
      const interrupted = a.driver.migrate(spec, b.address, {
        onProgress: (p) => {
          if (p.step === `migrate cold: ${step}`) throw new Error('worker lost');
        },
      });
      await expect(interrupted).rejects.toThrow('worker lost');
      expect(await a.driver.migrate(spec, b.address)).toMatchObject({ live: false });
      expect(await whereIs(spec, a, b)).toEqual([[b.name, 'running', spec.id]]);
    },
  );

  it('leaves the VM where it is when only a live migration will do', async () => {
    const { a, b } = await pair();
    const spec = await deployed(a);
    const err = await failure(a.driver.migrate(spec, b.address, { liveOnly: true }));
    expect(err.kind).toBe('unsupported');
    expect(await whereIs(spec, a, b)).toEqual([[a.name, 'running', spec.id]]);
  });

  it('refuses a target that has another domain of that name, touching neither', async () => {
    const { a, b } = await pair();
    const spec = await deployed(a);
    (await (await b.conn()).defineDomainXML(foreignDomainXml(spec.name))).free();
    expect((await failure(a.driver.migrate(spec, b.address))).kind).toBe('not-ours');
    expect(await whereIs(spec, a, b)).toEqual([
      [a.name, 'running', spec.id],
      [b.name, 'stopped', null],
    ]);
  });

  it('says not-found for a VM on neither host, and refuses its own host as target', async () => {
    const { a, b } = await pair();
    expect((await failure(a.driver.migrate(vmSpec(), b.address))).kind).toBe('not-found');
    const spec = await deployed(a);
    expect((await failure(a.driver.migrate(spec, a.address))).kind).toBe('rejected');
    expect(await whereIs(spec, a, b)).toEqual([[a.name, 'running', spec.id]]);
  });
});
