import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nameSchema } from '../../api/schemas.ts';
import {
  FAILURES,
  PERMANENT_FAILURES,
  hostRegisterWorkflowId,
  hostWorkflowId,
  monitorPollWorkflowId,
  monitorScheduledWorkflowId,
  vmWorkflowId,
} from '../../common/vocabulary.ts';

const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);

/** Every kind of workflow id, for one resource name each. */
const idsOf = (a: string, b: string) => ({
  vm: vmWorkflowId(a),
  host: hostWorkflowId(a),
  register: hostRegisterWorkflowId(a),
  poll: monitorPollWorkflowId(a),
  pollAll: monitorPollWorkflowId(),
  scheduled: monitorScheduledWorkflowId(),
  scheduledOwn: monitorScheduledWorkflowId(b),
});

describe('workflow ids', () => {
  it('keep the id running VM workflows are found by', () => {
    expect(vmWorkflowId('web-1')).toBe('vm:web-1');
  });

  it('a host named all polls under an id of its own', () => {
    expect(monitorPollWorkflowId('all')).not.toBe(monitorPollWorkflowId());
  });

  it('of two kinds never meet, whatever the names', () => {
    fc.assert(
      fc.property(name, name, name, name, (a, b, c, d) => {
        expect(nameSchema.safeParse(a).success).toBe(true);
        const one = Object.entries(idsOf(a, b));
        const other = Object.entries(idsOf(c, d));
        for (const [kind, id] of one) {
          for (const [otherKind, otherId] of other) {
            if (kind !== otherKind) expect(id).not.toBe(otherId);
          }
        }
      }),
    );
  });
});

describe('failure types', () => {
  it('retry only what may pass: an unreachable host, a host that timed out', () => {
    const transient = Object.keys(FAILURES).filter((t) => !PERMANENT_FAILURES.includes(t as never));
    expect(transient.sort()).toEqual(['HostTimeout', 'HostUnreachable']);
  });
});
