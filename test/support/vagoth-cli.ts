import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Runs the `vagoth` command (cli/vagoth.mjs) with this environment; resolves even when it fails. */
export async function runVagoth(env: NodeJS.ProcessEnv, args: readonly string[]) {
  return exec(path.resolve('cli/vagoth.mjs'), args, { env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}
