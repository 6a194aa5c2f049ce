import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/** The caller's SSH public key files: each non-blank line that is not a comment is a key. */
export function readKeyFiles(files: readonly string[] | undefined): string[] {
  return (files ?? []).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
}

/** A secret kept in a file (a token): its first line, so it never appears on a command line. */
export function readSecretFile(file: string): string {
  const secret = readFileSync(file, 'utf8').split('\n')[0]!.trim();
  if (secret === '') throw new Error(`${file} is empty`);
  return secret;
}

/** $VAGOTH_TOKEN, else the token in `file` if it is there; none: the call goes without. */
export function tokenFrom(envToken: string | undefined, file: string): string | undefined {
  if (envToken) return envToken;
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined; // no file: the call goes without, and is refused as unauthorised
  }
}

/**
 * Writes the secret `make` answers to a new file only its owner reads. The file is made before
 * the secret is, so a path that exists (or cannot be written) fails before anything is made;
 * if `make` fails, the empty file goes.
 */
export async function toSecretFile<T>(
  file: string,
  make: () => Promise<T>,
  secretOf: (made: T) => string,
): Promise<T> {
  const fd = openSync(file, 'wx', 0o600);
  try {
    const made = await make().catch((err: unknown) => {
      rmSync(file, { force: true });
      throw err;
    });
    writeSync(fd, `${secretOf(made)}\n`);
    return made;
  } finally {
    closeSync(fd);
  }
}
