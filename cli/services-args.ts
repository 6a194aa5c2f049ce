import { readFileSync } from 'node:fs';
import type { parseArgs, ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import type { CloudArgs, CloudValues } from './cloud-args.ts';
import { UsageError } from './usage.ts';

/** The options of the service layer's verbs; main.ts parses them with the others. */
export const SERVICES_OPTIONS = {
  replicas: { type: 'string' },
  spread: { type: 'string' },
  'max-unavailable': { type: 'string' },
  'max-surge': { type: 'string' },
  every: { type: 'string' },
  network: { type: 'string', multiple: true },
  file: { type: 'string' },
  'wait-timeout': { type: 'string' },
  placement: { type: 'string', multiple: true },
  health: { type: 'string' },
  'unhealthy-after': { type: 'string' },
  grace: { type: 'string' },
  'cloud-token': { type: 'string', multiple: true },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export type ServicesValues = CloudValues &
  ReturnType<
    typeof parseArgs<{ options: typeof SERVICES_OPTIONS; allowPositionals: true }>
  >['values'];

/** A service verb's command line: the cloud verbs' own, with the service layer's options. */
export type ServiceArgs = CloudArgs<ServicesValues>;

/** The values that were given: an option left out sends nothing, so the API's default holds. */
export const given = <T extends Record<string, unknown>>(values: T) =>
  Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };

/** A spec given with --file (`-`: standard input): a JSON object, the API's input's shape. */
export function readSpec(file: string): Record<string, unknown> {
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
  } catch (err) {
    // Not the parser's message: it quotes the file, which may hold user-data.
    if (err instanceof SyntaxError) throw new UsageError(`--file ${file} is not valid JSON`);
    throw err;
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new UsageError(`--file ${file} must hold a JSON object`);
  }
  return spec as Record<string, unknown>;
}

/** The option that sets each field of the API's input, by its path. */
const FLAG_OF: ReadonlyArray<readonly [string, string]> = [
  ['project', '--project'],
  ['replicas', '--replicas'],
  ['spread', '--spread'],
  ['everySeconds', '--every'],
  ['rollout.maxUnavailable', '--max-unavailable'],
  ['rollout.maxSurge', '--max-surge'],
  ['template.image', '--image'],
  ['template.vcpus', '--vcpus'],
  ['template.memoryMiB', '--memory'],
  ['template.diskGiB', '--disk'],
  ['template.nics', '--network'],
  ['template.sshAuthorizedKeys', '--ssh-key-file'],
  ['template.userData', '--user-data-file'],
  ['placements', '--placement'],
  ['health', '--health'],
  ['unhealthyAfter', '--unhealthy-after'],
  ['unknownGraceSeconds', '--grace'],
  ['clouds', '--cloud-token'],
];

/**
 * The input, checked by the API's own schema before any call: what it would refuse is a usage
 * error naming each field (and the option that sets it). Answers the input as it was made, so
 * the API's defaults stay the API's.
 */
export function checked<S extends z.ZodType>(schema: S, input: unknown, what: string): z.input<S> {
  const result = schema.safeParse(input);
  if (result.success) return input as z.input<S>;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    const flag = FLAG_OF.find(([p]) => path === p || path.startsWith(`${p}.`))?.[1];
    return `${path || 'input'}${flag ? ` (${flag})` : ''}: ${issue.message}`;
  });
  throw new UsageError(`${what}: ${problems.join('; ')}`);
}
