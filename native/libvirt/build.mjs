// Builds the libvirt binding with node-gyp (`npm run build:native`, and npm's postinstall).
// node-gyp needs Node's headers: where the distribution installed them (/usr/include/node),
// use those instead of downloading them, so the build also works offline.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// npm 11 runs the root's install scripts even for `npm install --package-lock-only`, when
// nothing is installed: there is nothing to build then.
if (process.env.npm_config_package_lock_only === 'true') process.exit(0);

const here = path.dirname(new URL(import.meta.url).pathname);
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const args = [nodeGyp, 'rebuild', '--directory', here];
const systemHeaders = path.join(path.dirname(path.dirname(process.execPath)), 'include/node');
if (!process.env.npm_config_nodedir && existsSync(path.join(systemHeaders, 'node.h'))) {
  args.push(`--nodedir=${path.dirname(path.dirname(systemHeaders))}`);
}
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'vagoth: building the libvirt binding failed. It needs libvirt-dev, pkg-config and a C++ ' +
      'compiler (bash scripts/setup.sh installs them).',
  );
  process.exit(result.status ?? 1);
}
