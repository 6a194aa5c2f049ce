import { describe, expect, it } from 'vitest';
import type { OperationKind } from '../../common/messages.ts';
import { projectedState, rejection } from '../../workflows/vm-rules.ts';

describe('which operation a VM accepts', () => {
  const cases: Array<[OperationKind, Parameters<typeof rejection>[2], string | null]> = [
    ['start', 'running', null], // idempotent
    ['start', 'stopped', null],
    ['stop', 'stopped', null], // idempotent
    ['reboot', 'stopped', 'vm v is stopped; start it instead'],
    ['reboot', 'running', null],
    ['migrate', 'stopped', null],
    ['start', 'failed', 'vm v failed; only reprovision or decommission is possible'],
    ['reprovision', 'failed', null], // reinstalled on the host it failed on
    ['decommission', 'failed', null],
    ['start', 'gone', 'vm v is being decommissioned or is gone'],
    ['decommission', 'gone', 'vm v is being decommissioned or is gone'],
  ];
  it.each(cases)('%s when %s: %s', (kind, state, why) => {
    expect(rejection('v', kind, state, 'hv1')).toBe(why);
  });

  it('lets a failed VM be reprovisioned only where it has a host', () => {
    expect(rejection('v', 'reprovision', 'failed', null)).toBe(
      'vm v failed; only decommission is possible',
    );
  });

  it('refuses a move to the host the VM is on, and a shutdown timeout out of range', () => {
    expect(rejection('v', 'migrate', 'running', 'hv1', { migrate: { host: 'hv1' } })).toBe(
      'vm v already runs on hv1',
    );
    expect(rejection('v', 'shutdown', 'running', 'hv1', { shutdown: { timeoutMs: -1 } })).toMatch(
      /^timeoutMs:/,
    );
  });

  it('judges a request against the state the queued operations lead to', () => {
    expect(projectedState('running', ['stop'])).toBe('stopped');
    expect(projectedState('running', ['stop', 'migrate'])).toBe('stopped');
    expect(projectedState('stopped', ['start', 'decommission'])).toBe('gone');
  });
});
