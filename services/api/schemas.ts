import { z } from 'zod';
import { ONE_PER_CLUSTER, overSpread, placedTotal } from '../placements.ts';

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

/**
 * Text the service's spec (jsonb) and the cloud's records can hold: no NUL, no lone UTF-16
 * surrogate. Every other string of the input is held to a pattern that admits neither.
 */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine(
      (s) => !s.includes('\u0000') && s.isWellFormed(),
      'must not hold a NUL character or a lone UTF-16 surrogate',
    );

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

const port = z.number().int().min(1).max(65_535);

/**
 * A probe of each running instance, from the service layer's worker, at the instance's first
 * address (only where the operator's VAGOTH_SERVICES_PROBE_CIDRS admits it). The path is a
 * plain path: it cannot name another host.
 */
export const healthInput = z.union([
  z.strictObject({ tcp: port }),
  z.strictObject({
    http: z.strictObject({
      port,
      path: z
        .string()
        .max(256)
        .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/, "must be a path starting with '/'")
        .default('/'),
    }),
  }),
]);

/** A cluster's or a region's name, as the cloud names them; another cloud's, as its operator. */
const CLOUD_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const cloudName = (what: string) =>
  z.string().regex(CLOUD_NAME, `must be ${what}: lower-case letters, digits or '-'`);

/**
 * Where some of its replicas go: a cluster or a region of its cloud, or of another vagoth
 * cloud the operator allows (`cloud`, by name; never a URL).
 */
export const placementInput = z
  .strictObject({
    cloud: cloudName('a cloud name').optional(),
    cluster: cloudName('a cluster name').optional(),
    region: cloudName('a region name').optional(),
    replicas: z.number().int().min(0).max(1000),
  })
  .refine((p) => p.cluster === undefined || p.region === undefined, {
    message: 'name a cluster or a region, not both',
    path: ['region'],
  });

const replicas = z.number().int().min(0).max(1000);
const placements = z.array(placementInput).min(1).max(16);

/**
 * A caller's credentials for each other cloud its placements name: its token there (checked
 * there, then used once to mint the service's own, never kept) and the project there.
 */
export const cloudsInput = z
  .record(z.string(), z.unknown())
  // Keys first, and named by no key: a caller's key that is no cloud name is never echoed,
  // nor is what it holds checked.
  .refine(
    (c) => Object.keys(c).every((k) => CLOUD_NAME.test(k)),
    "must be keyed by cloud names: lower-case letters, digits or '-'",
  )
  .refine((c) => Object.keys(c).length <= 16, 'must name at most 16 clouds')
  .pipe(
    z.record(
      z.string(),
      z.strictObject({
        token: z
          .string()
          .min(1)
          .max(256)
          .regex(/^[\x21-\x7e]+$/, 'must be a token: printable ASCII, no spaces'),
        project: projectName,
      }),
    ),
  );
const everySeconds = z.number().int().min(5).max(86_400);
const unknownGraceSeconds = z.number().int().min(0).max(86_400);
const unhealthyAfter = z.number().int().min(1).max(100);

/** Placements' replicas add up to the replicas asked (either may be given alone). */
function placedReplicas<T extends { replicas?: number | undefined; placements?: unknown }>(
  i: T,
  ctx: z.RefinementCtx,
) {
  const placed = i.placements as { replicas: number }[] | null | undefined;
  if (!placed) return;
  const sum = placedTotal(placed);
  if (i.replicas !== undefined && i.replicas !== sum) {
    ctx.addIssue({
      code: 'custom',
      message: `must add up to replicas (${i.replicas}), not ${sum}`,
      path: ['placements'],
    });
  }
  if (sum > 1000) {
    ctx.addIssue({ code: 'custom', message: 'must add up to 1000 at most', path: ['placements'] });
  }
  const seen = new Set<string>();
  (placed as { cloud?: string; cluster?: string; region?: string }[]).forEach((p, n) => {
    const where =
      p.cluster !== undefined
        ? `cluster ${p.cluster}`
        : p.region !== undefined
          ? `region ${p.region}`
          : 'anywhere';
    const key = p.cloud === undefined ? where : `cloud ${p.cloud}, ${where}`;
    if (seen.has(key)) {
      ctx.addIssue({ code: 'custom', message: `names ${key} twice`, path: ['placements', n] });
    }
    seen.add(key);
  });
  for (const n of overSpread((i as { spread?: unknown }).spread, placed)) {
    ctx.addIssue({ code: 'custom', message: ONE_PER_CLUSTER, path: ['placements', n, 'replicas'] });
  }
}

export const byService = z.object({ project: projectName, name: serviceName });

export const serviceCreateInput = byService
  .extend({
    template: templateInput,
    /** How many instances; with placements, their sum (and may be left out). */
    replicas: replicas.optional(),
    spread: z.enum(['host', 'cluster']).nullable().default(null),
    /** Where its replicas go; none: wherever its cloud places them. */
    placements: placements.nullable().default(null),
    rollout: rollout.default({ maxUnavailable: 0, maxSurge: 1 }),
    /** How often its reconcile runs. */
    everySeconds: everySeconds.default(30),
    /** How long an instance whose cluster does not answer waits before it is replaced. */
    unknownGraceSeconds: unknownGraceSeconds.default(120),
    health: healthInput.nullable().default(null),
    unhealthyAfter: unhealthyAfter.default(3),
    /** Credentials for each other cloud its placements name. */
    clouds: cloudsInput.default({}),
  })
  .superRefine(placedReplicas)
  .refine((i) => i.replicas !== undefined || i.placements !== null, {
    message: 'is required (or placements)',
    path: ['replicas'],
  });

/** The replicas a service asks for: as given, or its placements' sum. */
export const replicasOf = (i: {
  replicas?: number | undefined;
  placements?: readonly { replicas: number }[] | null | undefined;
}): number | undefined => i.replicas ?? (i.placements ? placedTotal(i.placements) : undefined);

/**
 * What may change: a service with placements is scaled by giving its placements (replicas
 * alone would not say where); `placements: null` lets its cloud place them again.
 */
export const serviceUpdateInput = byService
  .extend({
    template: templateInput.optional(),
    replicas: replicas.optional(),
    placements: placements.nullable().optional(),
    rollout: rollout.optional(),
    everySeconds: everySeconds.optional(),
    unknownGraceSeconds: unknownGraceSeconds.optional(),
    health: healthInput.nullable().optional(),
    unhealthyAfter: unhealthyAfter.optional(),
    /** Credentials for each other cloud a placement newly names (or to renew its token). */
    clouds: cloudsInput.default({}),
  })
  .superRefine(placedReplicas);

export const byProject = z.object({ project: projectName });
export const serviceEventsInput = byService.extend({
  limit: z.number().int().min(1).max(500).default(100),
});
