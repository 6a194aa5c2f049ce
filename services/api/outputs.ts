import { z } from 'zod';

/**
 * What each service procedure answers. tRPC checks every answer against its schema and keeps
 * only the fields named here, so nothing else of a record (the service's cloud token, its
 * template's user-data and keys) can reach a caller; the OpenAPI document
 * (/services/openapi.json) is made from them.
 */

/** A time: a Date in the procedure, an ISO 8601 string on the wire. */
const at = z.date().meta({ override: { type: 'string', format: 'date-time' } });
const count = z.number().int().min(0);
const port = z.number().int().min(1).max(65_535);

/**
 * Its template as a caller sees it: whether it has user-data and how many keys, never what
 * they are (the cloud answers no reader those either).
 */
const templateOut = z.object({
  vcpus: count,
  memoryMiB: count,
  image: z.string(),
  diskGiB: count.optional(),
  nics: z.array(z.object({ network: z.string() })).default([]),
  userData: z.literal('(set)').nullable(),
  sshAuthorizedKeys: count,
});

const healthOut = z.union([
  z.object({ tcp: port }),
  z.object({ http: z.object({ port, path: z.string() }) }),
]);

const placementOut = z.object({
  /** Another vagoth cloud, by name; none: the service's own. */
  cloud: z.string().optional(),
  cluster: z.string().optional(),
  region: z.string().optional(),
  replicas: count,
});

/** What its last reconcile left (services/activities.ts), or why it failed. */
const statusOut = z.object({
  at: z.string().optional(),
  desired: count.optional(),
  running: count.optional(),
  pending: count.optional(),
  dead: count.optional(),
  outdated: count.optional(),
  settled: z.boolean().optional(),
  /** What the cloud refused, one line each. */
  refused: z.array(z.string()).optional(),
  /** Members that failed their health check, with why. */
  unhealthy: z.array(z.string()).optional(),
  error: z.string().optional(),
  failedAt: z.string().optional(),
});

export const serviceOut = z.object({
  id: z.string(),
  project: z.string(),
  name: z.string(),
  template: templateOut,
  /** Its template's revision: members on another one are rolled forward. */
  revision: z.string(),
  replicas: count,
  spread: z.enum(['host', 'cluster']).nullable(),
  /** Where its replicas go; null: wherever its cloud places them. */
  placements: z.array(placementOut).nullable().default(null),
  rollout: z.object({ maxUnavailable: count, maxSurge: count }),
  everySeconds: count,
  unknownGraceSeconds: count,
  health: healthOut.nullable(),
  unhealthyAfter: count,
  paused: z.boolean(),
  /** When its delete was asked; its reconciles delete its instances, then it goes. */
  deletingAt: at.nullable(),
  status: statusOut,
  createdBy: z.string(),
  createdAt: at,
  updatedAt: at,
});
export const serviceListOut = z.array(serviceOut);

/** An instance the service made, as the service layer records it. */
const memberOut = z.object({
  name: z.string(),
  index: count,
  revision: z.string(),
  createdAt: at,
  /** The other cloud its instance is in; null: the service's own. */
  cloud: z.string().nullable().optional(),
  placement: z.string().nullable().optional(),
  unknownSince: at.nullable().optional(),
  failedChecks: count.optional(),
  retiring: z.string().nullable().optional(),
  /** Whether it has passed a health check since it was made. */
  healthy: z.boolean().optional(),
  /** The cloud's id of its instance, once known. */
  instanceId: z.string().nullable().optional(),
});

export const serviceDetailOut = serviceOut.extend({
  members: z.array(memberOut),
  /** The other clouds it holds a token in, and its project in each (never the token). */
  clouds: z.array(z.object({ cloud: z.string(), project: z.string() })),
  /** Its Temporal Schedule; null when it is not there. */
  schedule: z.object({ id: z.string(), paused: z.boolean(), nextRun: at.nullable() }).nullable(),
});

export const serviceDeleteOut = z.object({
  project: z.string(),
  name: z.string(),
  deleting: z.literal(true),
});

export const serviceEventsOut = z.array(
  z.object({
    id: z.string(),
    at,
    actor: z.string().nullable(),
    action: z.string(),
    /** What the change was (its store records it as JSON). */
    detail: z.preprocess((d) => d, z.record(z.string(), z.unknown())),
  }),
);
