import { z } from 'zod';
import { PROJECT_ROLES } from '../authorize.ts';
import { OPERATION_STATUSES } from '../clusters/answers.ts';
import { RESOURCES } from '../quota.ts';

/**
 * What each cloud procedure answers. tRPC checks every answer against its schema and keeps only
 * the fields named here, so nothing else of a record (a cluster's token, a VM's cluster-level
 * name) can reach a caller; the OpenAPI document (/cloud/openapi.json) is made from them.
 */

/** A time: a Date in the procedure, an ISO 8601 string on the wire. */
const at = z.date().meta({ override: { type: 'string', format: 'date-time' } });
const count = z.number().int().min(0);
const room = z.object({ vcpus: count, memoryMiB: count, diskGiB: count });

export const clusterOut = z.object({
  id: z.string(),
  name: z.string(),
  driver: z.enum(['local', 'vagoth']),
  url: z.string().nullable(),
  region: z.string(),
  tags: z.record(z.string(), z.string()),
  draining: z.boolean(),
  createdAt: at,
});
const capacityOut = z.object({
  hosts: count,
  activeHosts: count,
  vms: count,
  /** What its hosts offer (overcommit applied), and what is left on its active ones. */
  offered: room,
  free: room,
});
export const clusterRegisterOut = clusterOut.extend({ capacity: capacityOut });
export const clusterGetOut = clusterOut.extend({
  capacity: capacityOut.nullable(),
  /** Why the cluster did not answer just now; null when it did. */
  unreachable: z.string().nullable(),
});
export const clusterRemoveOut = z.object({ name: z.string(), removed: z.literal(true) });

export const userOut = z.object({
  id: z.string(),
  name: z.string(),
  admin: z.boolean(),
  createdAt: at,
  disabledAt: at.nullable(),
});
export const meOut = userOut.extend({
  token: z.object({ id: z.string(), readOnly: z.boolean() }),
});

const projectOut = z.object({ id: z.string(), name: z.string(), createdAt: at });
export const projectListOut = z.array(
  projectOut.extend({
    /** What the caller may do there with this token. */
    role: z.enum(['admin', ...PROJECT_ROLES]),
  }),
);
export const membersOut = z.array(
  z.object({ user: z.string(), role: z.enum(PROJECT_ROLES), addedAt: at }),
);
export const projectGetOut = projectOut.extend({ members: membersOut });
export const projectCreateOut = projectOut;
export const projectDeleteOut = z.object({ project: z.string(), deleted: z.literal(true) });
export const eventsOut = z.array(
  z.object({
    id: z.string(),
    at,
    user: z.string().nullable(),
    tokenId: z.string().nullable(),
    action: z.string(),
    target: z.string(),
    detail: z.record(z.string(), z.unknown()),
  }),
);

export const cloudEventsOut = z.array(
  eventsOut.element.extend({
    /** The project the change was made in; null: the cloud's own. */
    project: z.string().nullable(),
  }),
);

export const tokenOut = z.object({
  id: z.string(),
  name: z.string(),
  user: z.string(),
  project: z.string().nullable(),
  readOnly: z.boolean(),
  createdAt: at,
  expiresAt: at.nullable(),
  revokedAt: at.nullable(),
});
/** The secret is in this answer only: the cloud keeps its hash. */
export const tokenCreateOut = tokenOut.extend({ token: z.string() });

/** An operation of the instance's cluster (a workflow, or an update of one). */
export const operationOut = z.object({
  id: z.string(),
  runId: z.string(),
  updateId: z.string().optional(),
  kind: z.string(),
  /** Its page in the cluster's Temporal Web UI. */
  url: z.string(),
});
export const operationDetailOut = operationOut.extend({
  status: z.enum(OPERATION_STATUSES),
  startedAt: z.string(),
  closedAt: z.string().nullable(),
  error: z.object({ type: z.string().nullable(), message: z.string() }).nullable(),
  note: z.string().optional(),
});

export const instanceOut = z.object({
  id: z.string(),
  project: z.string(),
  name: z.string(),
  cluster: z.string(),
  vcpus: count,
  memoryMiB: count,
  diskGiB: count,
  ips: count,
  image: z.string().nullable(),
  createdAt: at,
  /**
   * As its cluster answers now: `unknown` when it does not answer; with no VM there, `pending`
   * until its create is taken, `missing` after (its share of the quota is given back soon).
   */
  state: z.string(),
  addresses: z.array(
    z.object({ network: z.string(), ip: z.string().optional(), mac: z.string().optional() }),
  ),
  error: z.string().nullable(),
  /** The VM's last operation, as its cluster records it. */
  operation: z
    .object({
      workflowId: z.string(),
      runId: z.string(),
      updateId: z.string().optional(),
      kind: z.string(),
    })
    .nullable(),
});
/** An instance's history: each thing asked of it, and the cluster's operation it started. */
export const instanceOperationsOut = z.array(
  z.object({
    id: z.string(),
    at,
    user: z.string().nullable(),
    action: z.string(),
    /** The cluster's operation (progress: instances.operation); null when none was started. */
    operation: operationOut.nullable(),
  }),
);
export const instanceCreateOut = z.object({ instance: instanceOut, operation: operationOut });
export const instanceOperationOut = z.object({ operation: operationOut });
export const instanceDeleteOut = z.object({
  name: z.string(),
  deleted: z.literal(true),
  /** The decommission on its cluster; null when the cluster had no such VM any more. */
  operation: operationOut.nullable(),
});

const limits = z.object(
  Object.fromEntries(RESOURCES.map((r) => [r, count.nullable()])) as Record<
    (typeof RESOURCES)[number],
    z.ZodNullable<typeof count>
  >,
);
const usage = z.object(
  Object.fromEntries(RESOURCES.map((r) => [r, count])) as Record<
    (typeof RESOURCES)[number],
    typeof count
  >,
);
export const quotaOut = z.object({ project: z.string(), quota: limits, usage });

export const grantChangeOut = z.object({
  cluster: z.string(),
  name: z.string(),
  /** The project it is granted to, or `public`. */
  owner: z.string(),
});
export const grantsOut = z.array(grantChangeOut.extend({ grantedAt: at }));
