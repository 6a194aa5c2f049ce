import { readFileSync } from 'node:fs';
import { serviceCreateInput, serviceUpdateInput } from '../services/api/schemas.ts';
import { readKeyFiles } from './files.ts';
import { checked, given, readSpec, type ServiceArgs } from './services-args.ts';
import type { ServicesIn, ServicesOut } from './services-client.ts';
import { serviceFlags } from './services-flags.ts';
import { UsageError } from './usage.ts';

type Template = ServicesIn['services']['create']['template'];
type Detail = ServicesOut['services']['get'];

export const SPREADS = ['host', 'cluster'] as const;

/** The template fields the options give; the files named are read here. */
function templateFlags(args: ServiceArgs): Partial<Template> {
  const { image, network, nic } = args.values;
  if (nic !== undefined) throw new UsageError(`services take --network NETWORK, not --nic`);
  const userData = args.values['user-data-file'];
  const keyFiles = args.values['ssh-key-file'];
  return given({
    image,
    vcpus: args.int('vcpus'),
    memoryMiB: args.int('memory'),
    diskGiB: args.int('disk'),
    nics: network?.map((name) => ({ network: name })),
    sshAuthorizedKeys: keyFiles && readKeyFiles(keyFiles),
    userData: userData === undefined ? undefined : readFileSync(userData, 'utf8'),
  });
}

/** --max-unavailable and --max-surge over `base` (the API takes the two together). */
async function rolloutFlags(args: ServiceArgs, base: () => Promise<unknown> | unknown) {
  const change = given({
    maxUnavailable: args.int('max-unavailable'),
    maxSurge: args.int('max-surge'),
  });
  if (Object.keys(change).length === 0) return {};
  return { rollout: { ...((await base()) as object), ...change } };
}

/**
 * What --file says, but the project and name: those are the command line's. --placement gives
 * the count too (their sum), so the file's replicas, which went with its placements, go.
 */
function specFile(args: ServiceArgs): Record<string, unknown> {
  const file = args.values.file;
  if (file === undefined) return {};
  const { project: _project, name: _name, ...spec } = readSpec(file);
  const placed = args.values.placement;
  if (placed === undefined || placed.includes('none')) return spec;
  const { replicas: _replicas, ...rest } = spec;
  return rest;
}

/** services.create's input: --file's spec, if any, with the options over it. */
export async function createInput(args: ServiceArgs): Promise<ServicesIn['services']['create']> {
  const spec = specFile(args);
  const input = {
    ...spec,
    ...given({
      replicas: args.int('replicas'),
      spread: args.choice('spread', SPREADS),
      everySeconds: args.int('every'),
    }),
    ...serviceFlags(args, 'create', spec.clouds),
    project: args.project(),
    name: args.name(),
    template: { ...(spec.template as object | undefined), ...templateFlags(args) },
    // The other bound, when one is given alone, is the file's or the API's default.
    ...(await rolloutFlags(
      args,
      () => spec.rollout ?? serviceCreateInput.shape.rollout.parse(undefined),
    )),
  };
  return checked(serviceCreateInput, input, 'services create');
}

/**
 * The service's template as the flags change it. The API never answers a template's user-data
 * or keys, so a template that has some is changed only with them given again.
 */
function changedTemplate(was: Detail['template'], flags: Partial<Template>): Template {
  const { userData, sshAuthorizedKeys, ...kept } = was;
  if (userData !== null && flags.userData === undefined) {
    throw new UsageError(
      'services update: the template has user-data, which is never shown back: give it again ' +
        'with --user-data-file (or the whole template with --file)',
    );
  }
  if (sshAuthorizedKeys > 0 && flags.sshAuthorizedKeys === undefined) {
    throw new UsageError(
      'services update: the template has SSH keys, which are never shown back: give them again ' +
        'with --ssh-key-file (or the whole template with --file)',
    );
  }
  return { ...kept, ...flags };
}

/**
 * services.update's input: --file's spec (its template whole), the options over it; template
 * options alone change those fields of the service's template, read first.
 */
export async function updateInput(
  args: ServiceArgs,
  current: () => Promise<Detail>,
): Promise<ServicesIn['services']['update']> {
  const spec = specFile(args);
  // Every option is parsed, its files read, before the service is: a malformed one is refused
  // without a call.
  const counts = given({ replicas: args.int('replicas'), everySeconds: args.int('every') });
  const service = serviceFlags(args, 'update', spec.clouds);
  const flags = templateFlags(args);
  const rollout = await rolloutFlags(args, async () => spec.rollout ?? (await current()).rollout);
  const fileTemplate = spec.template as Template | undefined;
  let template = fileTemplate;
  if (Object.keys(flags).length > 0) {
    template = fileTemplate
      ? { ...fileTemplate, ...flags }
      : changedTemplate((await current()).template, flags);
  }
  const change = {
    ...spec,
    ...counts,
    ...given({ template }),
    ...service,
    ...rollout,
  };
  if (Object.keys(change).length === 0) {
    throw new UsageError(
      'services update needs a change: --replicas, --placement, --image, --vcpus, --memory, ' +
        '--disk, --network, --user-data-file, --ssh-key-file, --max-unavailable, --max-surge, ' +
        '--every, --health, --unhealthy-after, --grace, --cloud-token or --file',
    );
  }
  const input = { ...change, project: args.project(), name: args.name() };
  return checked(serviceUpdateInput, input, 'services update');
}
