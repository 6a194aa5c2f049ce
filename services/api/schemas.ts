import { z } from 'zod';

const word = (what: string) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, `must be ${what}`);

export const projectName = z
  .string({ error: 'is required' })
  .regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be a project name');
/** Short enough that `<name>-<n>` is an instance name of the cloud's. */
export const serviceName = z
  .string({ error: 'is required' })
  .regex(
    /^[a-z][a-z0-9-]{0,19}$/,
    "must be 1-20 lower-case letters, digits or '-', starting with a letter",
  );

/** Text the cloud's records can hold: no NUL. */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not hold a NUL character');

/** An instance definition, as the cloud takes it (the cloud checks it again on each create). */
export const templateInput = z.object({
  vcpus: z.number().int().min(1).max(1024),
  memoryMiB: z
    .number()
    .int()
    .min(16)
    .max(4 * 1024 * 1024),
  image: word('an image name'),
  diskGiB: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024)
    .optional(),
  nics: z
    .array(z.object({ network: word('a network name') }))
    .max(16)
    .default([]),
  sshAuthorizedKeys: z
    .array(text(16 * 1024))
    .max(32)
    .optional(),
  userData: text(64 * 1024).optional(),
});

const rollout = z.object({
  maxUnavailable: z.number().int().min(0).max(1000),
  maxSurge: z.number().int().min(0).max(1000),
});

export const byService = z.object({ project: projectName, name: serviceName });

export const serviceCreateInput = byService.extend({
  template: templateInput,
  replicas: z.number().int().min(0).max(1000),
  spread: z.enum(['host', 'cluster']).nullable().default(null),
  rollout: rollout.default({ maxUnavailable: 0, maxSurge: 1 }),
  /** How often its reconcile runs. */
  everySeconds: z.number().int().min(5).max(86_400).default(30),
  /** How long an instance whose cluster does not answer waits before it is replaced. */
  unknownGraceSeconds: z.number().int().min(0).max(86_400).default(120),
  unhealthyAfter: z.number().int().min(1).max(100).default(3),
});

export const serviceUpdateInput = byService.extend({
  template: templateInput.optional(),
  replicas: z.number().int().min(0).max(1000).optional(),
  rollout: rollout.optional(),
});

export const byProject = z.object({ project: projectName });
export const serviceEventsInput = byService.extend({
  limit: z.number().int().min(1).max(500).default(100),
});
