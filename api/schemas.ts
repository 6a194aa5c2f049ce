import { z } from 'zod';
import { isGeatsUri, parseGeatsUri } from '../drivers/geats/uri.ts';
import { TAG_LIMITS } from '../registry/node-data.ts';
import { isLifecycleType } from '../registry/node-guard.ts';
import { parseLibvirtUri } from '../drivers/libvirt/uri.ts';
import { MAX_PAGE_SIZE } from '../registry/pagination.ts';
import { ROLES } from '../registry/tokens.ts';
import { bounded, jsonRecord, safeString, tagRecord } from './safe-input.ts';

// Names become libvirt domain names and parts of workflow ids: a narrow alphabet keeps
// them safe in both and in XML.
export const nameSchema = z
  .string({ error: 'is required' })
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
    "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

const macSchema = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, 'must be a MAC address like 52:54:00:12:34:56')
  .refine(
    (mac) => (parseInt(mac.slice(0, 2), 16) & 1) === 0,
    'must be a unicast MAC (even first octet)',
  )
  .transform((mac) => mac.toLowerCase());

const nicSchema = z.object({
  network: nameSchema,
  ip: z.ipv4({ error: 'must be an IPv4 address like 10.0.0.5' }).optional(),
  mac: macSchema.optional(),
});

// Everything a VM's workflow carries is bounded, so no request can push its state (its input,
// continued as new) towards Temporal's 2 MB payload limit: tags and placement tags at most
// 16 KiB each (TAG_LIMITS, which the registry also holds a node's merged tags to), NICs and
// groups a few hundred bytes each.
const tagsSchema = tagRecord(TAG_LIMITS);

export const hostRegisterInput = z
  .object({
    name: nameSchema,
    driver: z.enum(['libvirt', 'geats'], { error: "must be 'libvirt' or 'geats'" }),
    /** vCPUs of a geats host, which reports none; a libvirt host's are read from libvirt. */
    vcpus: z.number().int().min(1).max(4096).optional(),
    /** vCPUs offered per physical CPU. */
    cpuRatio: z.number().min(0.1).max(32).default(1),
    /** Memory offered per MiB of RAM; above 1 only with ballooning or swap. */
    memoryRatio: z.number().min(0.1).max(4).default(1),
    /** Disk the host offers to VMs (the driver does not report it). */
    diskGiB: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024)
      .default(0),
    tags: tagsSchema.default({}),
    uri: safeString().max(1024),
  })
  .superRefine((host, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (host.driver === 'geats') {
      try {
        parseGeatsUri(host.uri);
      } catch (err) {
        issue('uri', (err as Error).message);
      }
      if (host.vcpus === undefined)
        issue('vcpus', 'is required for a geats host: geats reports no CPU count');
      return;
    }
    if (isGeatsUri(host.uri)) issue('uri', "is a geats URI: register it with driver 'geats'");
    else {
      try {
        parseLibvirtUri(host.uri);
      } catch (err) {
        issue('uri', (err as Error).message);
      }
    }
    if (host.vcpus !== undefined)
      issue('vcpus', 'is read from libvirt: declare vcpus only for a geats host');
  });

const groupsSchema = z.array(nameSchema).max(8);

const placementSchema = z.object({
  host: nameSchema.optional(),
  /** Tags the host must carry. */
  tags: tagsSchema.optional(),
  antiAffinity: groupsSchema.optional(),
  affinity: groupsSchema.optional(),
  policy: z.enum(['spread', 'pack']).optional(),
});

/** A VM's size, the same for creating one and for asking where one would go. */
const vmShape = {
  vcpus: z.number().int().min(1).max(256),
  memoryMiB: z
    .number()
    .int()
    .min(16)
    .max(4 * 1024 * 1024),
  diskGiB: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024)
    .default(0),
};

/** One OpenSSH public key line: its type, its base64 body and an optional comment. */
const sshKeySchema = z
  .string()
  .max(16 * 1024)
  .regex(
    /^(ssh-[a-z0-9]+|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}( [\x20-\x7e]{0,256})?$/,
    'must be one OpenSSH public key line, like ssh-ed25519 AAAA... comment',
  );

/** cloud-init's user-data: at most 64 KiB, counted in UTF-8 bytes. */
export const USER_DATA_MAX_BYTES = 64 * 1024;

export const vmCreateInput = z
  .object({
    name: nameSchema,
    ...vmShape,
    /**
     * An imported image (images.create) the root disk is made from: an overlay grown to
     * `diskGiB` (by default the image's own virtual size, rounded up to a GiB).
     */
    image: nameSchema.optional(),
    /** Blank disks besides the root disk. */
    disks: z
      .array(
        z.object({
          sizeGiB: z
            .number()
            .int()
            .min(1)
            .max(64 * 1024),
        }),
      )
      .max(8)
      .default([]),
    /** Written to the guest's cloud-init seed (VMs from an image only). */
    sshAuthorizedKeys: z.array(sshKeySchema).max(32).default([]),
    userData: z
      .string()
      .refine(
        (s) => Buffer.byteLength(s, 'utf8') <= USER_DATA_MAX_BYTES,
        `must be at most ${USER_DATA_MAX_BYTES} bytes`,
      )
      .optional(),
    nics: z.array(nicSchema).max(16).default([]),
    tags: tagsSchema.default({}),
    placement: placementSchema.default({}),
    /** What a failed create leaves: nothing (default), or the VM `failed` with the reason. */
    onFailure: z.enum(['remove', 'keep']).default('remove'),
  })
  .superRefine((vm, ctx) => {
    if (vm.image === undefined) {
      // A seed is only made for a guest built from an image: without one, nothing reads it.
      for (const field of ['sshAuthorizedKeys', 'userData'] as const) {
        const given =
          field === 'userData' ? vm.userData !== undefined : vm.sshAuthorizedKeys.length;
        if (given)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'needs an image to be written to',
          });
      }
    }
    // Two NICs of one VM asking for the same key would conflict with themselves.
    for (const field of ['ip', 'mac'] as const) {
      const seen = new Set<string>();
      vm.nics.forEach((nic, i) => {
        const value = nic[field];
        if (value === undefined) return;
        if (seen.has(value))
          ctx.addIssue({
            code: 'custom',
            path: ['nics', i, field],
            message: `${value} is given twice`,
          });
        seen.add(value);
      });
    }
  });

export const byName = z.object({ name: nameSchema });

/** VMs by name, the ones the cluster has (a caller holding many names asks once); none: all. */
export const vmListInput = z
  .object({ names: z.array(nameSchema).min(1).max(MAX_PAGE_SIZE).optional() })
  .optional();

export const operationGetInput = z.object({
  id: safeString().min(1).max(300),
  runId: z.string().uuid().optional(),
  /** An operation on a VM is an Update within its entity workflow: its id there. */
  updateId: safeString().min(1).max(200).optional(),
});

export const vmShutdownInput = z.object({
  name: nameSchema,
  /** How long the guest may take to power itself off; default 60 s. */
  timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
  /** Power off once the timeout has passed; otherwise the VM stays running and the operation fails. */
  force: z.boolean().optional(),
});

export const vmMigrateInput = z.object({
  name: nameSchema,
  /** The target; by default the allocator picks one, the current host excluded. */
  host: nameSchema.optional(),
  /** Live where the driver can (default), else cold; false: always cold. */
  live: z.boolean().optional(),
});

export const placementExplainInput = z.object({
  ...vmShape,
  placement: placementSchema.default({}),
});

const ipv4 = z.ipv4({ error: 'must be an IPv4 address like 10.0.0.5' });

export const networkCreateInput = z.object({
  name: nameSchema,
  cidr: z.cidrv4({ error: 'must be an IPv4 CIDR like 10.0.0.0/24' }).refine((c) => {
    const bits = Number(c.split('/')[1]);
    return bits >= 8 && bits <= 30;
  }, 'must have a prefix between /8 and /30'),
  gateway: ipv4.optional(),
  reserved: z
    .array(z.object({ first: ipv4, last: ipv4 }))
    .max(64)
    .default([]),
  /** What its guests are told to ask, in order; outside the pool, or its gateway or reserved. */
  dns: z
    .array(ipv4)
    .max(4, 'at most 4 DNS servers')
    .refine((a) => new Set(a).size === a.length, 'names a server twice')
    .default([]),
});

/**
 * An image to import: `source` is a path under one of VAGOTH_IMAGE_DIRS or a URL under one of
 * VAGOTH_IMAGE_URLS (checked by the router, against the operator's lists); `format` and
 * `sha256`, when given, are what the image must turn out to be.
 */
export const imageCreateInput = z.object({
  name: nameSchema,
  source: safeString().min(1, 'is required').max(2048),
  format: z.enum(['raw', 'qcow2']).optional(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest: 64 lowercase hexadecimal digits')
    .optional(),
  /**
   * Direct kernel boot for the VMs made from this image: `kernel` and `initrd` name images
   * already imported (their files are copied to each host with this one); `cmdline` is the
   * kernel's command line.
   */
  boot: z
    .object({
      kernel: nameSchema,
      initrd: nameSchema.optional(),
      cmdline: safeString()
        .max(1024)
        .regex(/^[^\n\t]*$/, 'must be one line')
        .optional(),
    })
    .optional(),
});

// Generic nodes (nodes.*): any type a user registers, identified by id or by current name.

export const nodeTypeSchema = z
  .string({ error: 'is required' })
  .regex(
    /^[a-z][a-z0-9_-]{0,31}$/,
    "must be 1-32 lowercase letters, digits, '_' or '-', starting with a letter",
  );

export const nodeKeySchema = safeString().regex(
  /^[a-z][a-z0-9_-]{0,31}:\S{1,200}$/,
  "must be a kind, ':' and a value without spaces, like ip:10.0.0.5",
);

const cursorSchema = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a nextCursor returned by the previous page');

const limitSchema = z.number().int().min(1).max(MAX_PAGE_SIZE).optional();

/** A definition or metadata object; in a metadata patch, null removes the key. */
const jsonObjectSchema = jsonRecord({ maxKeys: 128, maxBytes: 64 * 1024 });
const tagPatchSchema = bounded(
  z.record(safeString().min(1).max(64), safeString().max(256).nullable()),
  TAG_LIMITS,
);

const keyListSchema = z
  .array(nodeKeySchema)
  .max(64)
  .superRefine((keys, ctx) => {
    keys.forEach((key, i) => {
      if (keys.indexOf(key) !== i)
        ctx.addIssue({ code: 'custom', path: [i], message: `${key} is given twice` });
      // Held by hosts alone (registry/migrations/008_host_identity.sql).
      if (key.startsWith('hypervisor:'))
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: 'hypervisor: keys are hosts.register’s',
        });
    });
  });

/** Exactly one of `fields` must be given; the issue names the first extra or missing one. */
function exactlyOne(fields: readonly string[]) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const given = fields.filter((f) => value[f] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [given[1] ?? fields[0] ?? ''],
        message: `give exactly one of ${fields.join(', ')}`,
      });
    }
  };
}

const refShape = {
  id: z.uuid({ error: 'must be a node id (a UUID)' }).optional(),
  name: nameSchema.optional(),
};

export const nodeRefSchema = z.object(refShape).superRefine(exactlyOne(['id', 'name']));

/** An input naming one node (by `id` or `name`) plus the procedure's own fields. */
function onNode<S extends z.ZodRawShape>(shape: S) {
  return z.object({ ...refShape, ...shape }).superRefine(exactlyOne(['id', 'name']));
}

/** vms.wipes: a VM by its id, or by its name (a decommissioned VM's last one). */
export const vmWipesInput = z
  .object({
    id: z.uuid({ error: 'must be a VM id (a UUID)' }).optional(),
    name: nameSchema.optional(),
  })
  .superRefine(exactlyOne(['id', 'name']));

export const nodeGetInput = z
  .object({ ...refShape, key: nodeKeySchema.optional() })
  .superRefine(exactlyOne(['id', 'name', 'key']));

export const nodeCreateInput = z.object({
  name: nameSchema,
  type: nodeTypeSchema.refine(
    (type) => !isLifecycleType(type),
    'vm, host and vm-migration nodes are created by vms.create, hosts.register and vms.migrate',
  ),
  tenant: nameSchema.optional(),
  parent: nodeRefSchema.optional(),
  definition: jsonObjectSchema.optional(),
  metadata: jsonObjectSchema.optional(),
  tags: tagsSchema.optional(),
  keys: keyListSchema.optional(),
});

export const nodeListInput = z
  .object({
    type: nodeTypeSchema.optional(),
    tenant: nameSchema.optional(),
    parent: nodeRefSchema.optional(),
    tag: z.object({ key: safeString().min(1).max(64), value: safeString().max(256) }).optional(),
    key: nodeKeySchema.optional(),
    cursor: cursorSchema.optional(),
    limit: limitSchema,
  })
  .default({});

export const nodeByRefInput = onNode({});
export const nodeRenameInput = onNode({ newName: nameSchema });
export const nodeSetParentInput = onNode({ parent: nodeRefSchema });
export const nodeMetadataInput = onNode({ patch: jsonObjectSchema });
export const nodeDefinitionInput = onNode({ definition: jsonObjectSchema });
export const nodeTagsInput = onNode({ patch: tagPatchSchema });
export const nodeEventsInput = onNode({ cursor: cursorSchema.optional(), limit: limitSchema });

export const nodeChangeKeysInput = z
  .object({ ...refShape, claim: keyListSchema.default([]), release: keyListSchema.default([]) })
  .superRefine(exactlyOne(['id', 'name']))
  .superRefine((input, ctx) => {
    input.release.forEach((key, i) => {
      if (input.claim.includes(key))
        ctx.addIssue({ code: 'custom', path: ['release', i], message: `${key} is also claimed` });
    });
  });

/** Evacuation restarts a host's VMs elsewhere: only safe once the host is known to be off. */
export const hostEvacuateInput = z.object({
  name: nameSchema,
  fenced: z.literal(true, {
    error: 'must be true: confirm the host is powered off or cut off (fenced) before evacuating',
  }),
});

// API tokens (tokens.*, an admin's).

export const tokenCreateInput = z
  .object({
    /** A label for the holder, shown by tokens.list. */
    name: nameSchema,
    role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
    /** Lifetime; none: valid until revoked. */
    expiresInSeconds: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .optional(),
  })
  .strict();

export const tokenListInput = z
  .object({ includeRevoked: z.boolean().optional() })
  .strict()
  .default({});

export const tokenRevokeInput = z
  .object({ id: z.uuid({ error: 'must be a token id (a UUID)' }) })
  .strict();
