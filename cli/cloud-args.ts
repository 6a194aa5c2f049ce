import type { parseArgs, ParseArgsConfig } from 'node:util';
import { SHARED_OPTIONS } from './options.ts';
import { UsageError } from './usage.ts';

/** The options of the cloud's verbs; main.ts parses them with the cluster's. */
export const CLOUD_OPTIONS = {
  ...SHARED_OPTIONS,
  project: { type: 'string' },
  json: { type: 'boolean' },
  public: { type: 'boolean' },
  url: { type: 'string' },
  'token-file': { type: 'string' },
  region: { type: 'string' },
  cluster: { type: 'string' },
  undrain: { type: 'boolean' },
  admin: { type: 'boolean' },
  user: { type: 'string' },
  'read-only': { type: 'boolean' },
  instances: { type: 'string' },
  ips: { type: 'string' },
  limit: { type: 'string' },
  before: { type: 'string' },
  after: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export type CloudValues = ReturnType<
  typeof parseArgs<{ options: typeof CLOUD_OPTIONS; allowPositionals: true }>
>['values'];

/** The options of `V` that take one value (not a switch, not a repeatable one). */
export type TextFlag<V> = {
  [K in keyof V]-?: V[K] extends string | undefined ? K : never;
}[keyof V] &
  string;

/**
 * A cloud verb's command line: its operands, its options and the project it acts in. `V`: the
 * options parsed, the cloud's and any a layer above adds (the service layer's).
 */
export class CloudArgs<V extends CloudValues = CloudValues> {
  readonly noun: string;
  readonly verb: string;

  constructor(
    readonly values: V,
    private readonly positionals: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.noun = positionals[0] ?? '';
    this.verb = positionals[1] ?? '';
  }

  /** The operands after noun and verb, as many as `names` names, else a usage error. */
  operands(...names: string[]): string[] {
    const given = this.positionals.slice(2);
    if (given.length !== names.length) {
      const wanted = names.map((n) => `<${n}>`).join(' ');
      throw new UsageError(`${this.noun} ${this.verb} takes ${wanted || 'no operands'}`);
    }
    return given;
  }

  /** The one operand a verb like `get <name>` takes. */
  name(what = 'name'): string {
    return this.operands(what)[0]!;
  }

  /** --project, else $VAGOTH_PROJECT: a verb acting in a project has one, or does not run. */
  project(): string {
    const project = this.values.project ?? this.env.VAGOTH_PROJECT;
    if (project === undefined || project === '') {
      throw new UsageError(`${this.noun} ${this.verb} needs --project P (or $VAGOTH_PROJECT)`);
    }
    return project;
  }

  /**
   * Whom a grant is for: --project (or $VAGOTH_PROJECT), or every project with --public. One
   * of the two is said, so a forgotten --project never publishes to all.
   */
  grantee(): { project?: string } {
    const project = this.values.project ?? this.env.VAGOTH_PROJECT;
    const named = project !== undefined && project !== '';
    if (named === (this.values.public === true)) {
      throw new UsageError(`${this.noun} ${this.verb} needs either --project P or --public`);
    }
    return named ? { project } : {};
  }

  /** An option's value as given, or undefined. */
  text(flag: TextFlag<V> | TextFlag<CloudValues>): string | undefined {
    return (this.values as Record<string, unknown>)[flag] as string | undefined;
  }

  /** A whole-number option, or undefined when not given; the API checks its bounds. */
  int(flag: TextFlag<V> | TextFlag<CloudValues>) {
    const text = this.text(flag);
    if (text === undefined) return undefined;
    if (!/^\d{1,15}$/.test(text)) {
      throw new UsageError(`--${flag} must be a whole number, not ${JSON.stringify(text)}`);
    }
    return Number(text);
  }

  /** One of `choices`, or undefined when not given (or a usage error when `needed`). */
  choice<C extends string>(
    flag: TextFlag<V> | TextFlag<CloudValues>,
    choices: readonly C[],
    needed: true,
  ): C;
  choice<C extends string>(
    flag: TextFlag<V> | TextFlag<CloudValues>,
    choices: readonly C[],
  ): C | undefined;
  choice<C extends string>(
    flag: TextFlag<V> | TextFlag<CloudValues>,
    choices: readonly C[],
    needed = false,
  ) {
    const given = this.text(flag);
    if (given === undefined && !needed) return undefined;
    if (!choices.includes(given as C)) {
      throw new UsageError(
        `${this.noun} ${this.verb} needs --${flag} ${choices.join('|')}` +
          (given === undefined ? '' : `, not ${JSON.stringify(given)}`),
      );
    }
    return given as C;
  }

  /** A quota's limit: a whole number, `none` (no limit), or undefined when not given. */
  limit(flag: 'vcpus' | 'memory' | 'disk' | 'instances' | 'ips'): number | null | undefined {
    return this.values[flag] === 'none' ? null : this.int(flag);
  }

  /** A whole-number option the verb cannot do without. */
  required(flag: 'vcpus' | 'memory'): number {
    const n = this.int(flag);
    if (n === undefined) throw new UsageError(`${this.noun} ${this.verb} needs --${flag} N`);
    return n;
  }

  /** `--tag k=v`-style options as a record; an item without `=` is a usage error. */
  pairs(flag: 'tag' | 'require'): Record<string, string> {
    return Object.fromEntries(
      (this.values[flag] ?? []).map((item) => {
        const at = item.indexOf('=');
        if (at < 1) throw new UsageError(`--${flag} takes key=value, not ${JSON.stringify(item)}`);
        return [item.slice(0, at), item.slice(at + 1)];
      }),
    );
  }
}
