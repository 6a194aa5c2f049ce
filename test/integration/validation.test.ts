import { WorkflowNotFoundError } from '@temporalio/client';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { settle, startHarness, type Harness } from '../support/harness.ts';

type CreateInput = Parameters<Harness['api']['vms']['create']>[0];

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.api.hosts.register({ name: 'hv', driver: 'libvirt', uri: await h.simulatedHost('hv') });
});
afterAll(async () => {
  await h?.close();
});

async function rejection(input: unknown): Promise<TRPCError> {
  const outcome = await h.api.vms.create(input as CreateInput).then(
    (created) => created,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(TRPCError);
  return outcome as TRPCError;
}

async function vmNames(): Promise<string[]> {
  const rows = await h.sql<
    { name: string }[]
  >`SELECT name FROM nodes WHERE type = 'vm' ORDER BY name`;
  return rows.map((r) => r.name);
}

/** Keys held by VMs (a host holds its hypervisor's key from its registration). */
async function claimedKeys(): Promise<{ key: string; holder: string }[]> {
  return h.sql<{ key: string; holder: string }[]>`
    SELECT k.key, n.name AS holder FROM node_keys k JOIN nodes n ON n.id = k.node_id
    WHERE n.type <> 'host' ORDER BY k.key`;
}

async function createWorkflowIds(): Promise<string[]> {
  const ids: string[] = [];
  const query = `TaskQueue = '${h.taskQueue}' AND WorkflowType = 'vmEntity'`;
  for await (const wf of h.temporal.workflow.list({ query })) ids.push(wf.workflowId);
  return ids.sort();
}

/** No VM row, no claimed key, and no create workflow for `name`. */
async function expectNothingCreated(name: string) {
  expect(await vmNames()).toEqual([]);
  expect(await claimedKeys()).toEqual([]);
  await expect(h.temporal.workflow.getHandle(`vm:${name}`).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

// Each bad input also asks for a well-formed IP, so a create that got as far as claiming keys
// would leave it in node_keys.
const nics = (ip: string, extra: Record<string, unknown> = {}) => [
  { network: 'default', ip, ...extra },
];

describe('vms.create refuses invalid input before anything is created', () => {
  it.each<[string, Record<string, unknown>, (string | number)[]]>([
    [
      'negative memory',
      { name: 'neg-mem', vcpus: 1, memoryMiB: -256, nics: nics('10.9.0.1') },
      ['memoryMiB'],
    ],
    [
      'a malformed IP',
      {
        name: 'bad-ip',
        vcpus: 1,
        memoryMiB: 256,
        nics: [...nics('10.9.0.2'), { network: 'default', ip: '10.0.0.256' }],
      },
      ['nics', 1, 'ip'],
    ],
    [
      'a malformed MAC',
      {
        name: 'bad-mac',
        vcpus: 1,
        memoryMiB: 256,
        nics: nics('10.9.0.3', { mac: '52:54:00:zz:00:01' }),
      },
      ['nics', 0, 'mac'],
    ],
    [
      'a multicast MAC',
      {
        name: 'mcast-mac',
        vcpus: 1,
        memoryMiB: 256,
        nics: nics('10.9.0.4', { mac: '01:00:5e:00:00:01' }),
      },
      ['nics', 0, 'mac'],
    ],
    [
      'the same IP on two NICs',
      {
        name: 'dup-ip',
        vcpus: 1,
        memoryMiB: 256,
        nics: [...nics('10.9.0.5'), ...nics('10.9.0.5')],
      },
      ['nics', 1, 'ip'],
    ],
    ['a missing name', { vcpus: 1, memoryMiB: 256, nics: nics('10.9.0.6') }, ['name']],
    [
      'a name with <',
      { name: 'web<1', vcpus: 1, memoryMiB: 256, nics: nics('10.9.0.7') },
      ['name'],
    ],
  ])('%s: BAD_REQUEST naming the field', async (_what, input, path) => {
    const error = await rejection(input);
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.cause).toBeInstanceOf(z.ZodError);
    const issues = (error.cause as z.ZodError).issues;
    expect(issues.length).toBeGreaterThan(0);
    for (const issue of issues) expect(issue.path).toEqual(path);
    await expectNothingCreated(String(input.name));
  });

  it('an unknown placement.host: BAD_REQUEST naming the field', async () => {
    const error = await rejection({
      name: 'hinted',
      vcpus: 1,
      memoryMiB: 256,
      nics: nics('10.9.0.8'),
      placement: { host: 'nowhere' },
    });
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(/^placement\.host: /);
    expect(error.message).toContain('nowhere');
    await expectNothingCreated('hinted');
  });
});

describe('after the refusals, a valid create', () => {
  // Shows the checks above can see a VM, a key and a workflow when there is one.
  it('is the only VM, key holder and create workflow', async () => {
    const { operation } = await h.api.vms.create({
      name: 'valid-1',
      vcpus: 1,
      memoryMiB: 256,
      nics: [{ network: 'default', ip: '10.9.0.1' }],
      placement: { host: 'hv' },
    });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await vmNames()).toEqual(['valid-1']);
    const keys = await claimedKeys();
    expect(keys).toContainEqual({ key: 'ip:10.9.0.1', holder: 'valid-1' });
    expect(keys.every((k) => k.holder === 'valid-1')).toBe(true);
    // Visibility lags: wait until the valid run is listed; any run the refused requests had
    // started would have started earlier and be listed by then.
    await expect
      .poll(createWorkflowIds, { timeout: 10_000, interval: 200 })
      .toContain('vm:valid-1');
    expect(await createWorkflowIds()).toEqual(['vm:valid-1']);
  });
});
