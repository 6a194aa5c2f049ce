import { z } from 'zod';

/**
 * What the cloud reads of another cluster's answers, checked before any of it is used or passed
 * on: numbers are finite and in range, names and states are short words, text is bounded and
 * printable. An answer of any other shape is not the cluster's API, and is refused.
 */
const count = z.number().int().min(0).max(1e12);
const ratio = z.number().min(0).max(1000);
const word = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/);
const text = (max: number) =>
  z
    .string()
    .max(max)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s), 'has control characters');
const room = z.object({ vcpus: count, memoryMiB: count, diskGiB: count });

export const hostsAnswer = z.array(
  z.object({
    state: z.enum(['active', 'maintenance', 'down']),
    vms: count,
    capacity: room,
    ratios: z.object({ cpu: ratio, memory: ratio }),
    free: room,
  }),
);

export const explainAnswer = z.object({
  host: word.nullable(),
  /** Why each host would not take it, in the allocator's words. */
  rejected: z.record(word, text(500)).default({}),
});

const operation = z.object({
  id: text(300),
  runId: text(100),
  updateId: text(300).optional(),
  kind: word,
  url: z.url().max(2048),
});

export const vmAnswer = z.object({
  id: text(64),
  name: word,
  state: z.string().regex(/^[a-z]{1,32}$/),
  definition: z.object({
    nics: z
      .array(
        z.object({
          network: word,
          ip: text(64).optional(),
          mac: text(64).optional(),
        }),
      )
      .max(64),
  }),
  error: text(2000).nullable(),
  operation: z
    .object({ workflowId: text(300), runId: text(100), updateId: text(300).optional(), kind: word })
    .nullable(),
});

/** vms.list of named VMs: no more than were asked for (at most 500). */
export const vmsAnswer = z.array(vmAnswer).max(500);

export const operationAnswer = z.object({ operation });

/** How an operation of a cluster's can stand, as the cloud answers it. */
export const OPERATION_STATUSES = [
  'queued',
  'running',
  'completed',
  'failed',
  'cancelled',
  'terminated',
  'timed_out',
] as const;

/** operations.get: how an operation goes, in the words the cloud answers it with. */
export const operationDetailAnswer = operation.extend({
  status: z.enum(OPERATION_STATUSES),
  startedAt: text(64),
  closedAt: text(64).nullable(),
  error: z.object({ type: text(128).nullable(), message: text(2000) }).nullable(),
  note: text(2000).optional(),
});
export const createAnswer = z.object({ vm: vmAnswer, operation });
