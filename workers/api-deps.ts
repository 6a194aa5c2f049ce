import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ApiDeps } from '../api/context.ts';
import { TokenVerifier } from '../api/token-verifier.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../registry/db.ts';
import { bootstrapAdminToken } from '../registry/tokens.ts';

// Tokens remembered by one API process; a cluster's callers are far fewer.
const TOKEN_CACHE_ENTRIES = 10_000;

/** What the API needs, from the configuration and the connections the root opened. */
export function apiDeps(config: Config, sql: Sql, temporal: Client): ApiDeps {
  const { temporal: t } = config;
  return {
    sql,
    temporal,
    taskQueue: t.taskQueue,
    namespace: t.namespace,
    temporalUiUrl: t.uiUrl,
    placementPolicy: config.placementPolicy,
    hostUris: config.drivers.hostUris,
    imageSources: config.images.sources,
    tokens: new TokenVerifier(sql, {
      ttlMs: config.api.tokenCacheMs,
      maxEntries: TOKEN_CACHE_ENTRIES,
    }),
  };
}

/**
 * On a registry with no usable admin token, makes one and writes it to `file` (mode 0600,
 * replaced whole), so the operator who started vagoth can call it. Answers the file's path
 * when it wrote one, else null.
 */
export async function ensureAdminToken(sql: Sql, file: string): Promise<string | null> {
  const token = await bootstrapAdminToken(sql);
  if (token === null) return null;
  await writeSecret(file, token);
  return file;
}

/** Writes a secret to `file`, mode 0600, replaced whole (never half-written). */
export async function writeSecret(file: string, token: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, `${token}\n`, { mode: 0o600 });
  await chmod(partial, 0o600); // the mode is only applied when the file is created
  await rename(partial, file);
}
