import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmWorkflowId } from '../../common/vocabulary.ts';
import { statusQuery } from '../../workflows/index.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';

// Issue 15: operations fired together at a few VMs, as many callers would. Whatever the
// interleaving, every operation the API accepted ends completed or failed, the registry and
// each VM's workflow agree, no state in between outlives its operation, and no migration hold
// is left. VAGOTH_OPS_SEED replays a sequence.

let h: Harness;
const HOSTS = ['ih1', 'ih2', 'ih3'];
const SETTLED = ['running', 'stopped', 'failed'];

beforeAll(async () => {
  h = await startHarness();
  for (const name of HOSTS) {
    const uri = await h.simulatedHost(name, { cpus: 16, memoryMiB: 16384 });
    await h.api.hosts.register({ name, driver: 'libvirt', uri, diskGiB: 100 });
  }
});
afterAll(async () => {
  await h?.close();
});

const OPS = [
  'start',
  'stop',
  'reboot',
  'migrate',
  'shutdown',
  'reprovision',
  'decommission',
  'maintenance',
] as const;
type Op = (typeof OPS)[number];

type Accepted = { operation: { id: string; runId: string; updateId?: string } };

async function fire(name: string, op: Op): Promise<Accepted | null> {
  switch (op) {
    case 'start':
      return h.api.vms.start({ name });
    case 'stop':
      return h.api.vms.stop({ name });
    case 'reboot':
      return h.api.vms.reboot({ name });
    case 'migrate':
      return h.api.vms.migrate({ name });
    case 'shutdown':
      return h.api.vms.shutdown({ name, timeoutMs: 200, force: true });
    case 'reprovision':
      return h.api.vms.reprovision({ name });
    case 'decommission':
      return h.api.vms.decommission({ name });
    case 'maintenance': {
      // A drain of the VM's host, beside the VM's own operations; the host comes back after.
      const host = (await h.api.vms.get({ name }).catch(() => null))?.host;
      if (host) await h.api.hosts.maintenance({ name: host });
      return null;
    }
  }
}

/** Why the registry disagrees with itself or with the VMs' workflows: empty when it does not. */
async function disagreements(names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const name of names) {
    const reg = await h.api.vms.get({ name }).catch(() => null);
    const wf = await h.temporal.workflow
      .getHandle(vmWorkflowId(name))
      .query(statusQuery)
      .catch(() => null);
    const wfState = wf?.state ?? 'gone';
    if (!reg) {
      if (wfState !== 'gone') out.push(`${name}: removed, but its workflow says ${wfState}`);
      continue;
    }
    if (!SETTLED.includes(reg.state)) out.push(`${name}: left ${reg.state}`);
    if (reg.state !== wfState || reg.host !== (wf?.host ?? null))
      out.push(`${name}: registry ${reg.state} on ${reg.host}, workflow ${wfState} on ${wf?.host}`);
  }
  // Keys and room go with their node (ON DELETE CASCADE); a migration hold is a node of its
  // own, and none may outlive the move that took it.
  const leftovers = await h.sql<{ what: string }[]>`
    SELECT 'hold ' || name AS what FROM nodes WHERE type = 'vm-migration'`;
  out.push(...leftovers.map((l) => `left behind: ${l.what}`));
  return out;
}

describe('operations fired together at a few VMs', () => {
  it('end, agree with the registry and leave nothing behind, whatever the interleaving', async () => {
    const seed = Number(process.env.VAGOTH_OPS_SEED || Date.now() % 1e9);
    console.log(`operations seed ${seed} (VAGOTH_OPS_SEED replays it)`);
    const rounds = fc.sample(
      fc.array(fc.tuple(fc.nat(1), fc.constantFrom(...OPS)), { minLength: 40, maxLength: 40 }),
      { seed, numRuns: 5 },
    );
    for (const [round, ops] of rounds.entries()) {
      const names = [`il-${round}-a`, `il-${round}-b`];
      for (const name of names) {
        const { operation } = await h.api.vms.create({ name, vcpus: 1, memoryMiB: 64, diskGiB: 1 });
        expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
      }
      const answers = await Promise.allSettled(ops.map(([vm, op]) => fire(names[vm]!, op)));
      const accepted: Accepted['operation'][] = [];
      for (const a of answers) {
        if (a.status === 'fulfilled') {
          if (a.value) accepted.push(a.value.operation);
        } else {
          // A refusal says why, at once; nothing else may come of a request.
          expect((a.reason as { code?: string }).code).toMatch(/PRECONDITION_FAILED|NOT_FOUND/);
        }
      }
      const ends = [];
      for (const op of accepted) ends.push((await settle(h, op)).status);
      expect({
        round,
        ops,
        unended: ends.filter((s) => s !== 'completed' && s !== 'failed'),
      }).toEqual({ round, ops, unended: [] });
      for (const host of HOSTS) await h.api.hosts.activate({ name: host });
      expect({ round, ops, wrong: await disagreements(names) }).toEqual({ round, ops, wrong: [] });
    }
  }, 600_000);
});
