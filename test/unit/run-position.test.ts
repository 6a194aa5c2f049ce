import { describe, expect, it } from 'vitest';
import {
  asRunPosition,
  resetRefusal,
  type Recorded,
  type RunPosition,
} from '../../common/run-position.ts';

// Which steps of a run begun by a Temporal Reset may act on their VM: only those that find the
// registry holding nothing the run's history lacks.

const step = (over: Partial<RunPosition> = {}): RunPosition => ({
  run: 'r2',
  reset: true,
  inherited: false,
  predecessor: null,
  generation: 0,
  at: 40,
  vmId: 'vm-id',
  ...over,
});
const written = (run: string, at: number, generation = 0): Recorded => ({
  exists: true,
  at: { run, at, generation },
});
const point = { baseRun: 'r1', eventId: 30 };

describe('resetRefusal', () => {
  it('never refuses a run that was not reset, whatever the registry holds', () => {
    expect(resetRefusal(step({ reset: false }), null, written('other', 999), 'web')).toBeNull();
    expect(resetRefusal(step({ reset: false }), null, { exists: false }, 'web')).toBeNull();
  });

  it('lets a reset run act on what its history holds', () => {
    expect(resetRefusal(step(), point, written('r2', 35), 'web')).toBeNull(); // its own change
    expect(resetRefusal(step(), point, written('r1', 29), 'web')).toBeNull(); // before the point
    // an earlier run of a chain never reset before
    expect(resetRefusal(step({ generation: 2 }), point, written('r0', 900, 1), 'web')).toBeNull();
  });

  it('refuses a reset run where the registry moved past the reset point', () => {
    for (const recorded of [
      written('r1', 30), // the base run, at the point
      written('r1', 31), // the base run, after it
      written('r9', 10), // a run it knows nothing of (an earlier reset, say)
      written('r3', 5, 1), // a later generation of the chain
      { exists: true, at: null } as const, // changed by the monitor
      { exists: false } as const, // the VM was removed after
    ]) {
      const why = resetRefusal(step(), point, recorded, 'web');
      expect(why, JSON.stringify(recorded)).toMatch(/^vm web.*Reset is refused/s);
    }
    // no reset point found: the base run's changes cannot be placed before it
    expect(resetRefusal(step(), null, written('r1', 1), 'web')).not.toBeNull();
    // reset to before the VM was claimed
    expect(resetRefusal(step({ vmId: null }), point, written('r1', 1), 'web')).toMatch(
      /before its VM was claimed/,
    );
  });

  it('checks every run continued from a reset run: its carried facts may be stale', () => {
    const after = step({
      run: 'r3',
      reset: false,
      inherited: true,
      predecessor: 'r2',
      generation: 1,
    });
    expect(resetRefusal(after, null, written('r3', 5, 1), 'web')).toBeNull(); // its own
    expect(resetRefusal(after, null, written('r2', 50), 'web')).toBeNull(); // its predecessor's
    // the reset run's base, or any older run: the reset run may never have seen them
    expect(resetRefusal(after, null, written('r1', 20), 'web')).not.toBeNull();
    expect(resetRefusal(after, null, written('r0', 900, 0), 'web')).not.toBeNull();
  });
});

describe('asRunPosition', () => {
  it('takes a whole position and nothing else', () => {
    expect(asRunPosition(step())).toEqual(step());
    for (const bad of [
      null,
      'x',
      {},
      { ...step(), at: 1.5 },
      { ...step(), reset: 'yes' },
      { ...step(), vmId: 3 },
    ]) {
      expect(asRunPosition(bad)).toBeNull();
    }
  });
});
