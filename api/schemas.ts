import { z } from 'zod';

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

export const hostRegisterInput = z.object({
  name: nameSchema,
  driver: z.literal('libvirt', { error: "must be 'libvirt'" }),
  uri: z
    .string()
    .max(1024)
    .regex(
      /^[a-z][a-z0-9+.-]*:\/\/\S*$/,
      'must be a libvirt URI such as qemu:///system or test:///path/host.xml',
    ),
});

export const vmCreateInput = z
  .object({
    name: nameSchema,
    vcpus: z.number().int().min(1).max(256),
    memoryMiB: z
      .number()
      .int()
      .min(16)
      .max(4 * 1024 * 1024),
    nics: z.array(nicSchema).max(16).default([]),
    tags: z.record(z.string().min(1).max(64), z.string().max(256)).default({}),
    placement: z.object({ host: nameSchema.optional() }).optional(),
  })
  .superRefine((vm, ctx) => {
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

export const operationGetInput = z.object({
  id: z.string().min(1).max(300),
  runId: z.string().uuid().optional(),
});
