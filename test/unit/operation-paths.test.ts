import { describe, expect, it } from 'vitest';
import { wentPast } from '../../registry/vms.ts';

describe("wentPast: a state later on its operation's path", () => {
  it('create: only states after the transition`s target', () => {
    expect(wentPast('create', 'defining', 'starting')).toBe(true);
    expect(wentPast('create', 'placing', 'running')).toBe(true);
    expect(wentPast('create', 'starting', 'defining')).toBe(false);
    expect(wentPast('create', 'running', 'starting')).toBe(false);
    expect(wentPast('create', 'starting', 'starting')).toBe(false);
  });

  it('never from off the path: failed, or a state another operation owns', () => {
    expect(wentPast('create', 'starting', 'failed')).toBe(false);
    expect(wentPast('create', 'starting', 'stopped')).toBe(false);
    expect(wentPast('stop', 'stopping', 'stopped')).toBe(true);
    expect(wentPast('start', 'starting', 'stopped')).toBe(false);
    expect(wentPast('migrate', 'migrating', 'running')).toBe(false);
    expect(wentPast('unknown', 'placing', 'running')).toBe(false);
  });
});
