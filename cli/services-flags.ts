import { readFileSync } from 'node:fs';
import { given, type ServiceArgs } from './services-args.ts';
import type { ServicesIn } from './services-client.ts';
import { UsageError } from './usage.ts';

// The options that say where a service's replicas go, how they are checked and with what
// credentials in other clouds: parsed into the API's input here, its bounds left to its schema.

type Create = ServicesIn['services']['create'];
type Placement = NonNullable<Create['placements']>[number];
type Health = NonNullable<Create['health']>;
type Clouds = NonNullable<Create['clouds']>;

/** Which verb: only an update may take a field back to none (`--placement none`). */
export type Verb = 'create' | 'update';

const WHOLE = /^\d{1,15}$/;
const PLACEMENT_KEYS = ['replicas', 'cloud', 'cluster', 'region'] as const;
const PLACEMENT_FORM = 'replicas=N[,cloud=NAME][,cluster=NAME|,region=NAME]';

/** One `--placement`: `replicas=N[,cloud=NAME][,cluster=NAME|,region=NAME]`. */
export function parsePlacement(spec: string): Placement {
  const refuse = (why: string): never => {
    throw new UsageError(`--placement ${JSON.stringify(spec)}: ${why} (${PLACEMENT_FORM})`);
  };
  const fields: Partial<Record<(typeof PLACEMENT_KEYS)[number], string>> = {};
  for (const item of spec.split(',')) {
    const at = item.indexOf('=');
    if (at < 1) refuse(`takes key=value, not ${JSON.stringify(item)}`);
    const key = item.slice(0, at) as (typeof PLACEMENT_KEYS)[number];
    if (!PLACEMENT_KEYS.includes(key)) refuse(`has no key ${JSON.stringify(item.slice(0, at))}`);
    if (fields[key] !== undefined) refuse(`names ${key} twice`);
    fields[key] = item.slice(at + 1);
  }
  const { replicas, ...where } = fields;
  if (replicas === undefined) refuse('needs replicas=N');
  if (!WHOLE.test(replicas!)) refuse(`replicas must be a whole number, not ${replicas}`);
  return { ...where, replicas: Number(replicas) };
}

/** Every `--placement` given; `none` (update only, alone): its cloud places them again. */
export function placementsFlag(list: readonly string[] | undefined, verb: Verb) {
  if (list === undefined) return undefined;
  if (!list.includes('none')) return list.map(parsePlacement);
  if (list.length > 1) throw new UsageError('--placement none takes no other --placement');
  if (verb === 'create') {
    throw new UsageError('--placement none is for services update: a new service has none');
  }
  return null;
}

const HEALTH = /^(tcp|http):(\d{1,15})(\/.*)?$/;

/** `--health tcp:PORT`, `--health http:PORT[/PATH]` (path '/'), or on update `none`. */
export function healthFlag(text: string | undefined, verb: Verb): Health | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'none') {
    if (verb === 'create') {
      throw new UsageError('--health none is for services update: a new service has none');
    }
    return null;
  }
  const [, kind, port, path] = HEALTH.exec(text) ?? [];
  if (kind === 'tcp' && path === undefined) return { tcp: Number(port) };
  if (kind === 'http') return { http: { port: Number(port), path: path ?? '/' } };
  throw new UsageError(
    `--health takes tcp:PORT or http:PORT[/PATH]${verb === 'update' ? ' or none' : ''}, ` +
      `not ${JSON.stringify(text)}`,
  );
}

/**
 * A token kept in a file, read here so it is never on a command line; an error names the file
 * and never says what it holds.
 */
function readToken(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`${flag}: cannot read ${file} (${code})`);
  }
  return text.replace(/\r?\n$/, '');
}

/** Every `--cloud-token NAME=PROJECT:FILE`: the caller's token in cloud NAME, read from FILE. */
export function cloudsFlag(list: readonly string[] | undefined): Clouds | undefined {
  if (list === undefined) return undefined;
  const clouds: Clouds = {};
  for (const spec of list) {
    const [, name, project, file] = /^([^=]+)=([^:]+):(.+)$/s.exec(spec) ?? [];
    const flag = `--cloud-token ${JSON.stringify(spec)}`;
    if (name === undefined || project === undefined || file === undefined) {
      throw new UsageError(`${flag}: takes NAME=PROJECT:FILE (the token read from FILE)`);
    }
    if (Object.hasOwn(clouds, name)) throw new UsageError(`${flag}: names cloud ${name} twice`);
    clouds[name] = { token: readToken(file, flag), project };
  }
  return clouds;
}

/**
 * The API's fields these options set, only those given. --cloud-token's clouds are merged over
 * `specClouds` (--file's), one entry a cloud; the others replace what --file says.
 */
export function serviceFlags(args: ServiceArgs, verb: Verb, specClouds?: unknown) {
  const clouds = cloudsFlag(args.values['cloud-token']);
  return given({
    placements: placementsFlag(args.values.placement, verb),
    health: healthFlag(args.values.health, verb),
    unhealthyAfter: args.int('unhealthy-after'),
    unknownGraceSeconds: args.int('grace'),
    clouds: clouds && { ...(specClouds as Clouds | undefined), ...clouds },
  });
}
