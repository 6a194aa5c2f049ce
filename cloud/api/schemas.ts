import { z } from 'zod';
import { safeString, tagRecord } from '../../api/safe-input.ts';
import { PROJECT_ROLES } from '../authorize.ts';

// The shapes the cloud's tables hold names to (cloud/migrations/001_cloud.sql): a cluster-level
// name made of a project's and an instance's must fit the cluster's 63 characters.
const shortName = z
  .string({ error: 'is required' })
  .regex(
    /^[a-z][a-z0-9-]{0,30}$/,
    "must be 1-31 lower-case letters, digits or '-', starting with a letter",
  );
export const userName = z
  .string({ error: 'is required' })
  .regex(
    /^[a-z][a-z0-9_.-]{0,62}$/,
    "must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter",
  );
const tokenName = z
  .string({ error: 'is required' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "must be 1-63 letters, digits, '.', '_' or '-'");

/** A cluster's network or image, as its cluster names it. */
const resourceName = z
  .string({ error: 'is required' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "must be 1-63 letters, digits, '.', '_' or '-'");

export const projectName = shortName;
export const clusterName = shortName;

export const clusterRegisterInput = z
  .object({
    name: clusterName,
    driver: z.enum(['local', 'vagoth'], { error: "must be 'local' or 'vagoth'" }),
    /** A vagoth cluster's tRPC endpoint, under a prefix of VAGOTH_CLOUD_CLUSTER_URLS. */
    url: safeString().max(1024).optional(),
    /** The cluster token the cloud calls a vagoth cluster with. */
    token: z
      .string()
      .regex(/^vgt_[A-Za-z0-9_-]{43}$/, 'must be a cluster token (vgt_...)')
      .optional(),
    region: shortName.default('default'),
    tags: tagRecord({ maxKeys: 32, maxBytes: 4096 }).default({}),
  })
  .superRefine((c, ctx) => {
    const remote = c.driver === 'vagoth';
    for (const field of ['url', 'token'] as const) {
      if (remote && c[field] === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: 'is required for a vagoth cluster',
        });
      }
      if (!remote && c[field] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: 'is only for a vagoth cluster' });
      }
    }
  });

export const byCluster = z.object({ name: clusterName });
export const clusterDrainInput = z.object({
  name: clusterName,
  /** false: take new instances again. */
  draining: z.boolean().default(true),
});

export const userCreateInput = z.object({ name: userName, admin: z.boolean().default(false) });
export const byUser = z.object({ user: userName });

export const byProject = z.object({ project: projectName });
export const projectCreateInput = z.object({ project: projectName });
export const memberAddInput = z.object({
  project: projectName,
  user: userName,
  role: z.enum(PROJECT_ROLES, { error: `must be one of ${PROJECT_ROLES.join(', ')}` }),
});
export const memberRemoveInput = z.object({ project: projectName, user: userName });
export const projectEventsInput = z.object({
  project: projectName,
  limit: z.number().int().min(1).max(500).default(100),
  /** An event id: the page before it (older). */
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be an event id')
    .optional(),
});

export const eventsListInput = z.object({
  limit: z.number().int().min(1).max(500).default(100),
  /** An event id: the page before it (older). */
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be an event id')
    .optional(),
  /** One kind of change only, e.g. `clusters.register`. */
  action: z
    .string()
    .regex(/^[a-z]+\.[A-Za-z-]+$/, 'must be an action such as clusters.register')
    .optional(),
});

export const tokenCreateInput = z.object({
  name: tokenName,
  /** Whose token: the caller's own unless an admin names another user. */
  user: userName.optional(),
  /** Narrowed to one project the user belongs to; none: all of the user's projects. */
  project: projectName.optional(),
  readOnly: z.boolean().default(false),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(10 * 365 * 86_400)
    .optional(),
});
export const tokenListInput = z.object({ user: userName.optional() });
export const tokenRevokeInput = z.object({ id: z.uuid({ error: 'must be a token id' }) });

export const instanceName = shortName;

/** What the cloud checks itself (what counts against quotas); the cluster checks the rest. */
export const instanceCreateInput = z
  .object({
    project: projectName,
    name: instanceName,
    cluster: clusterName.optional(),
    region: shortName.optional(),
    vcpus: z.number().int().min(1).max(1024),
    memoryMiB: z
      .number()
      .int()
      .min(16)
      .max(4 * 1024 * 1024),
    /** An image of the cluster's published to the project (images.publish). */
    image: resourceName,
    diskGiB: z
      .number()
      .int()
      .min(0)
      .max(64 * 1024)
      .default(0),
    nics: z
      .array(z.object({ network: resourceName, ip: z.string().max(64).optional() }))
      .max(16)
      .default([]),
    sshAuthorizedKeys: z
      .array(z.string().max(16 * 1024))
      .max(32)
      .default([]),
    userData: z
      .string()
      .max(64 * 1024)
      .optional(),
    /** Host tags the instance needs, and how the cluster spreads a project's instances. */
    placement: z
      .object({
        tags: tagRecord({ maxKeys: 16, maxBytes: 4096 }).optional(),
        policy: z.enum(['spread', 'pack']).optional(),
        /**
         * The project's anti-affinity groups it joins: no two instances of one group share a
         * host. Groups are the project's own: another project's of the same name is another.
         */
        antiAffinity: z.array(shortName).max(4).optional(),
        /** Clusters it must not go to (a service keeping its instances in distinct ones). */
        excludeClusters: z.array(clusterName).max(64).optional(),
      })
      .default({}),
  })
  .refine((i) => i.cluster === undefined || i.region === undefined, {
    message: 'name a cluster or a region, not both',
    path: ['region'],
  });

export const byInstance = z.object({ project: projectName, name: instanceName });
export const instanceOperationsInput = byInstance.extend({
  limit: z.number().int().min(1).max(500).default(50),
});
export const instanceListInput = z.object({
  project: projectName,
  cluster: clusterName.optional(),
  limit: z.number().int().min(1).max(100).default(100),
  /** The last name of the page before. */
  after: instanceName.optional(),
  /** Only those whose names start so (a service's `<service>-`). */
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,30}$/, "must be lower-case letters, digits or '-'")
    .optional(),
});
/** One of the instance's operations, as instances.create or an operation on it answered it. */
export const instanceOperationInput = z.object({
  project: projectName,
  name: instanceName,
  id: z.string().min(1).max(200),
  runId: z.string().max(64).optional(),
  updateId: z.string().max(200).optional(),
});

/** The limits to change (null: no limit); a limit not named stays as it is. */
export const quotaSetInput = z.object({
  project: projectName,
  instances: z.number().int().min(0).max(1_000_000).nullable().optional(),
  vcpus: z.number().int().min(0).max(100_000_000).nullable().optional(),
  memoryMiB: z.number().int().min(0).max(1e12).nullable().optional(),
  diskGiB: z.number().int().min(0).max(1e12).nullable().optional(),
  ips: z.number().int().min(0).max(100_000_000).nullable().optional(),
});

/** A network (`network`) or image (`image`) of a cluster, for one project or, none named, all. */
export function grantInput<K extends 'network' | 'image'>(kind: K) {
  return z.object({
    cluster: clusterName,
    ...({ [kind]: resourceName } as Record<K, typeof resourceName>),
    /** None: public, every project may use it. */
    project: projectName.optional(),
  });
}
