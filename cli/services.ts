import { TRPCClientError } from '@trpc/client';
import type { Config } from '../config.ts';
import { CloudArgs } from './cloud-args.ts';
import { cloudToken } from './cloud-client.ts';
import { serviceUpdateInput } from '../services/api/schemas.ts';
import { checked, type ServiceArgs, type ServicesValues } from './services-args.ts';
import {
  servicesClient,
  servicesUrl,
  type ServicesApi,
  type ServicesOut,
} from './services-client.ts';
import { createInput, updateInput } from './services-spec.ts';
import { EVENT, SERVICE, serviceDetail } from './services-views.ts';
import { untilGone, untilSettled, type WaitOptions } from './services-wait.ts';
import { table } from './table.ts';
import { UsageError } from './usage.ts';

type Detail = ServicesOut['services']['get'];

/** What a service verb works with, as a cloud verb does (cli/cloud.ts). */
interface ServicesCommand {
  api: ServicesApi;
  args: ServiceArgs;
  show<T>(answer: T, render: (answer: T) => string): void;
  /** With --wait: how to wait; null without. */
  wait: WaitOptions | null;
}

const DEFAULT_WAIT_S = 600;

const isNotFound = (err: unknown) =>
  err instanceof TRPCClientError &&
  (err.data as { code?: string } | undefined)?.code === 'NOT_FOUND';

/** The service's detail, or with --wait that detail once the service is settled. */
async function finish({ api, show, wait }: ServicesCommand, answer: Detail) {
  if (wait === null) return show(answer, serviceDetail);
  const at = { project: answer.project, name: answer.name };
  show(await untilSettled(() => api.services.get.query(at), wait), serviceDetail);
}

/** The service named on the command line, in --project. */
const target = (args: ServiceArgs) => ({ project: args.project(), name: args.name() });

/** The service layer's verbs, by verb: all act in --project (or $VAGOTH_PROJECT). */
const VERBS: Record<string, (c: ServicesCommand) => Promise<void>> = {
  async list({ api, args, show }) {
    args.operands();
    show(await api.services.list.query({ project: args.project() }), (ss) => table(SERVICE, ss));
  },
  async show({ api, args, show }) {
    show(await api.services.get.query(target(args)), serviceDetail);
  },
  async events({ api, args, show }) {
    const limit = args.int('limit');
    const events = await api.services.events.query({
      ...target(args),
      ...(limit === undefined ? {} : { limit }),
    });
    show(events, (es) => table(EVENT, es));
  },
  async create(c) {
    await finish(c, await c.api.services.create.mutate(await createInput(c.args)));
  },
  async update(c) {
    let current: Promise<Detail> | undefined;
    const read = () => (current ??= c.api.services.get.query(target(c.args)));
    await finish(c, await c.api.services.update.mutate(await updateInput(c.args, read)));
  },
  async scale(c) {
    const [name, replicas] = c.args.operands('name', 'replicas');
    if (!/^\d{1,15}$/.test(replicas!)) {
      throw new UsageError(
        `services scale: <replicas> must be a whole number, not ${JSON.stringify(replicas)}`,
      );
    }
    const input = { project: c.args.project(), name: name!, replicas: Number(replicas) };
    await finish(
      c,
      await c.api.services.update.mutate(checked(serviceUpdateInput, input, 'services scale')),
    );
  },
  async pause({ api, args, show }) {
    show(await api.services.pause.mutate(target(args)), serviceDetail);
  },
  async resume(c) {
    await finish(c, await c.api.services.resume.mutate(target(c.args)));
  },
  /** Its instances go, then the service; --wait follows that to its end. */
  async delete({ api, args, show, wait }) {
    const at = target(args);
    const answer = await api.services.delete.mutate(at);
    if (wait === null) {
      return show(answer, (a) => `service ${a.name} is being deleted: its instances go, then it`);
    }
    const get = () =>
      api.services.get.query(at).catch((err: unknown) => {
        if (isNotFound(err)) return null;
        throw err;
      });
    await untilGone(at.name, get, wait);
    show({ ...answer, deleting: false, deleted: true }, (a) => `service ${a.name} deleted`);
  },
};

/** Runs a service verb (`services <verb> ...`) against the service layer beside the cloud. */
export async function runServices(
  values: ServicesValues,
  positionals: readonly string[],
  config: Pick<Config, 'token' | 'cloud' | 'api'>,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const args: ServiceArgs = new CloudArgs(values, positionals, env);
  const verb = Object.hasOwn(VERBS, args.verb) ? VERBS[args.verb] : undefined;
  if (!verb) throw new UsageError(`unknown command: services ${args.verb}`.trimEnd());
  const url = servicesUrl(env, config.api.url);
  const api = servicesClient(url, cloudToken(config));
  // A template's user-data never reaches the terminal, whatever a server answers.
  const hidden = (key: string, value: unknown) =>
    key === 'userData' && typeof value === 'string' ? '(set)' : value;
  const show = <T>(answer: T, render: (answer: T) => string) =>
    console.log(values.json ? JSON.stringify(answer, hidden, 2) : render(answer));
  const wait = values.wait
    ? { timeoutMs: (args.int('wait-timeout') ?? DEFAULT_WAIT_S) * 1000, out: process.stderr }
    : null;
  await verb({ api, args, show, wait }).catch((err: unknown) => {
    if (err instanceof TRPCClientError && err.data === undefined) {
      throw new Error(`the service layer at ${url} did not answer: ${err.message}`, { cause: err });
    }
    throw err;
  });
}
