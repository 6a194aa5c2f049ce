import { describe, expect, it } from 'vitest';
import type { VmFacts } from '../../common/messages.ts';
import {
  attributePairs,
  attributeUpdates,
  SEARCH_ATTRIBUTE_NAMES,
} from '../../common/search-attributes.ts';
import { devServerFlags, registerCommand } from '../../workers/search-attributes.ts';
import { summarize } from '../../workflows/interceptors.ts';
import type { OperationRecord } from '../../workflows/vm-entity.ts';
import { vmAttributes, vmDetails } from '../../workflows/vm-window.ts';
import { retryRejection } from '../../workflows/vm-rules.ts';

const vm = (over: Partial<VmFacts> = {}): VmFacts => ({
  name: 'web-1',
  vmId: 'id-1',
  state: 'running',
  host: 'sim-2',
  error: null,
  ...over,
});

const op = (over: Partial<OperationRecord>): OperationRecord => ({
  updateId: 'u',
  kind: 'stop',
  runId: 'r',
  status: 'completed',
  projected: 'stopped',
  error: null,
  acceptedAt: '2026-12-05T10:00:00.000Z',
  closedAt: '2026-12-05T10:00:01.000Z',
  ...over,
});

describe('search attribute updates', () => {
  it('carry only what changed, and remove what is no longer set', () => {
    expect(attributeUpdates({ VagothVmState: 'running' }, { VagothVmState: 'running' })).toEqual(
      [],
    );
    const updates = attributeUpdates(
      { VagothVmState: 'running', VagothFailure: 'NoCapacity', VagothHost: 'a' },
      { VagothVmState: 'stopped', VagothHost: 'a' },
    );
    expect(updates).toEqual([
      { key: { name: 'VagothVmState', type: 'KEYWORD' }, value: 'stopped' },
      { key: { name: 'VagothFailure', type: 'KEYWORD' }, value: null },
    ]);
  });

  it('start pairs name only what is set', () => {
    expect(attributePairs({ VagothKind: 'host', VagothHost: 'h' }).map((p) => p.key.name)).toEqual([
      'VagothKind',
      'VagothHost',
    ]);
  });

  it('are registered by flags and a command an administrator can paste', () => {
    expect(devServerFlags()).toContain('VagothOperationStatus=Keyword');
    expect(devServerFlags().filter((f) => f === '--search-attribute')).toHaveLength(
      SEARCH_ATTRIBUTE_NAMES.length,
    );
    expect(registerCommand('prod', ['VagothKind', 'VagothFailure'])).toBe(
      'temporal operator search-attribute create --namespace prod --name VagothKind --type Keyword --name VagothFailure --type Keyword',
    );
  });
});

describe("a VM's attributes", () => {
  it('speak of the operation in progress before the last one closed', () => {
    const failed = op({ status: 'failed', error: { type: 'NoCapacity', message: 'no room' } });
    const running = op({ kind: 'migrate', status: 'running', closedAt: null });
    expect(vmAttributes(vm({ state: 'migrating' }), [running], [failed, running])).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'migrating',
      VagothHost: 'sim-2',
      VagothOperation: 'migrate',
      VagothOperationStatus: 'running',
    });
  });

  it("name the last operation's failure while it is the last, and no host when on none", () => {
    const failed = op({
      kind: 'create',
      status: 'failed',
      error: { type: 'NoCapacity', message: 'x' },
    });
    expect(vmAttributes(vm({ state: 'failed', host: null }), [], [failed])).toEqual({
      VagothKind: 'vm',
      VagothVmState: 'failed',
      VagothOperation: 'create',
      VagothOperationStatus: 'failed',
      VagothFailure: 'NoCapacity',
    });
    const later = op({ kind: 'start' });
    expect(vmAttributes(vm(), [], [failed, later]).VagothFailure).toBeUndefined();
  });

  it('ignore operations only queued', () => {
    const queued = op({ kind: 'reboot', status: 'queued', closedAt: null });
    expect(vmAttributes(vm(), [queued], [op({}), queued]).VagothOperation).toBe('stop');
  });
});

describe("a VM's current details", () => {
  it('say what runs, what waits, and how to retry a failure with its input', () => {
    const failed = op({
      kind: 'migrate',
      status: 'failed',
      args: [{ host: 'sim-3' }],
      error: { type: 'NoCapacity', message: 'sim-3: not enough memory' },
    });
    const running = op({ kind: 'stop', status: 'running', closedAt: null });
    const queued = op({ kind: 'start', status: 'queued', closedAt: null });
    const text = vmDetails(vm({ state: 'stopping' }), [running, queued], [failed, running, queued]);
    expect(text).toContain('VM `web-1` is `stopping` on host `sim-2`.');
    expect(text).toContain('In progress: `stop`');
    expect(text).toContain('Waiting: `start`.');
    expect(text).toContain('Last operation `migrate` failed (NoCapacity)');
    expect(text).toContain('sim-3: not enough memory');
    expect(text).toContain('send the Update `retry` with no input');
    expect(text).toContain('runs `migrate` again with input `[{"host":"sim-3"}]`');
  });

  it('tell a failed create kept as failed to send retry, which places it again', () => {
    const failed = op({
      kind: 'create',
      status: 'failed',
      error: { type: 'NoCapacity', message: 'm' },
    });
    const text = vmDetails(vm({ state: 'failed', host: null }), [], [failed]);
    expect(text).toContain('on no host');
    expect(text).toContain('send the Update `retry` with no input');
    expect(text).toContain('vagoth operations retry web-1');
    // A create whose VM is elsewhere than failed on no host cannot be placed again.
    expect(vmDetails(vm({ state: 'failed' }), [], [failed])).toContain('Update `decommission`');
  });

  it('never let a backquote in a name break out of its code span', () => {
    expect(vmDetails(vm({ name: 'a`b' }), [], [])).toContain("`a'b`");
  });
});

describe('a retry', () => {
  const failedOp = (kind: OperationRecord['kind']) => ({ kind, status: 'failed' as const });
  it('is refused with the reason when there is nothing failed to run again', () => {
    expect(retryRejection('w', undefined, 'running', 'h', true, {})).toMatch(/no operation/);
    expect(
      retryRejection('w', { kind: 'stop', status: 'completed' }, 'stopped', 'h', true, {}),
    ).toBe("vm w's last operation, stop, completed: nothing to retry");
  });
  it('is judged as its operation would be', () => {
    expect(retryRejection('w', failedOp('reboot'), 'stopped', 'h', true, {})).toMatch(
      /start it instead/,
    );
    expect(
      retryRejection('w', failedOp('migrate'), 'running', 'h', true, { migrate: { host: 'h' } }),
    ).toMatch(/already runs on h/);
    expect(retryRejection('w', failedOp('stop'), 'running', 'h', true, {})).toBeNull();
    expect(retryRejection('w', failedOp('stop'), 'gone', 'h', true, {})).toMatch(/decommissioned/);
  });
  it('only while the failure is the latest operation, never of an evacuation', () => {
    expect(retryRejection('w', { kind: 'stop', status: 'queued' }, 'running', 'h', true, {})).toBe(
      "vm w's last operation, stop, is queued: retry once it has ended",
    );
    expect(retryRejection('w', failedOp('evacuate'), 'running', 'h', true, {})).toMatch(
      /hosts.evacuate/,
    );
  });
  it('of a create, only on a VM kept failed on no host', () => {
    expect(retryRejection('w', failedOp('create'), 'failed', null, true, {})).toBeNull();
    expect(retryRejection('w', failedOp('create'), 'failed', null, false, {})).toMatch(
      /create it again/,
    );
    expect(retryRejection('w', failedOp('create'), 'running', null, true, {})).toMatch(
      /create it again/,
    );
    expect(retryRejection('w', failedOp('create'), 'gone', null, true, {})).toMatch(/gone/);
  });
});

describe('step summaries', () => {
  const at = { name: 'web-1', host: 'sim-2' };
  it.each([
    ['defineDomain', [], 'define web-1 on sim-2'],
    ['allocateVm', [], 'place web-1'],
    ['migrateDomain', ['id', 'sim-3', true], 'move web-1 from sim-2 to sim-3 live'],
    ['deprovisionVolumes', ['id', 'sim-1'], "wipe web-1's volumes on sim-1"],
    ['transitionVm', ['id', ['running'], 'stopping'], 'record web-1 stopping'],
    ['somethingNew', [], 'somethingNew web-1 on sim-2'],
  ])('%s', (type, args, summary) => {
    expect(summarize(type, args, at)).toBe(summary);
  });
});
