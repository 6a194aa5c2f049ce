import { TRPCClientError } from '@trpc/client';
import type { Config } from '../config.ts';
import { CloudArgs, type CloudValues } from './cloud-args.ts';
import { ADMIN_VERBS } from './cloud-admin.ts';
import {
  cloudClient,
  cloudToken,
  cloudTokenHint,
  cloudUrl,
  type CloudApi,
} from './cloud-client.ts';
import { GRANT_VERBS } from './cloud-grants.ts';
import { INSTANCE_VERBS } from './cloud-instances.ts';
import { PROJECT_VERBS } from './cloud-projects.ts';
import { UsageError } from './usage.ts';

/** What a cloud verb works with: the API, its command line, and how it prints the answer. */
export interface CloudCommand {
  api: CloudApi;
  args: CloudArgs;
  /** The answer as JSON with --json (for scripts), else as the table `render` makes of it. */
  show<T>(answer: T, render: (answer: T) => string): void;
}

/** Each verb by `noun verb`. */
export type CloudVerbs = Record<string, (c: CloudCommand) => Promise<void>>;

const VERBS: CloudVerbs = { ...ADMIN_VERBS, ...PROJECT_VERBS, ...GRANT_VERBS, ...INSTANCE_VERBS };

export const CLOUD_NOUNS: ReadonlySet<string> = new Set(
  Object.keys(VERBS).map((key) => key.split(' ')[0]!),
);

/** Runs a cloud verb; answers what to say when the cloud refuses the token as unauthorised. */
export async function runCloud(
  values: CloudValues,
  positionals: readonly string[],
  config: Pick<Config, 'token' | 'cloud' | 'api'>,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const args = new CloudArgs(values, positionals, env);
  const verb = VERBS[`${args.noun} ${args.verb}`];
  if (!verb) throw new UsageError(`unknown command: ${args.noun} ${args.verb}`.trimEnd());
  const url = cloudUrl(env, config.api.url);
  const api = cloudClient(url, cloudToken(config));
  const show = <T>(answer: T, render: (answer: T) => string) =>
    console.log(values.json ? JSON.stringify(answer, null, 2) : render(answer));
  await verb({ api, args, show }).catch((err: unknown) => {
    // No answer at all (nothing listening, not an API): say where it was asked.
    if (err instanceof TRPCClientError && err.data === undefined) {
      throw new Error(`the cloud at ${url} did not answer: ${err.message}`, { cause: err });
    }
    throw err;
  });
}

/** The hint for an UNAUTHORIZED answer of the cloud, if there is one to give. */
export const unauthorizedHint = (config: Pick<Config, 'token' | 'cloud'>) =>
  cloudTokenHint(config, cloudToken(config));
