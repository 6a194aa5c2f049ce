import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options the cluster's verbs and the cloud's both take, with one meaning. */
export const SHARED_OPTIONS = {
  vcpus: { type: 'string' },
  memory: { type: 'string' },
  nic: { type: 'string', multiple: true },
  tag: { type: 'string', multiple: true },
  disk: { type: 'string' },
  require: { type: 'string', multiple: true },
  policy: { type: 'string' },
  driver: { type: 'string' },
  wait: { type: 'boolean' },
  image: { type: 'string' },
  'ssh-key-file': { type: 'string', multiple: true },
  'user-data-file': { type: 'string' },
  role: { type: 'string' },
  expires: { type: 'string' },
} as const satisfies Options;

/** Options of the cluster's verbs alone. */
export const CLUSTER_OPTIONS = {
  fenced: { type: 'boolean' },
  host: { type: 'string' },
  'anti-affinity': { type: 'string', multiple: true },
  affinity: { type: 'string', multiple: true },
  'cpu-ratio': { type: 'string' },
  'memory-ratio': { type: 'string' },
  gateway: { type: 'string' },
  reserve: { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  'keep-on-failure': { type: 'boolean' },
  timeout: { type: 'string' },
  force: { type: 'boolean' },
  to: { type: 'string' },
  cold: { type: 'boolean' },
  update: { type: 'string' },
  format: { type: 'string' },
  sha256: { type: 'string' },
  'extra-disk': { type: 'string', multiple: true },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  cmdline: { type: 'string' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;
