import { localTemporal } from './local-temporal.ts';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../config.ts';
import { connect } from '../../registry/db.ts';
import { migrate } from '../../registry/migrate.ts';
import { workflowInterceptorModules, workflowsPath } from '../../workers/compose.ts';

/**
 * Once per run: migrate a template database (each test file clones its own from it), start a
 * Temporal dev server unless TEMPORAL_ADDRESS names one, and bundle the workflows once.
 */
export default async function setup(project: TestProject) {
  const config = loadConfig();
  const databaseUrl = config.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  // One per project and run: projects sharing this setup (integration, chaos) run it each.
  const templateDatabase = `vagoth_template_${project.name.replace(/\W/g, '_')}_${process.pid}`;
  const admin = connect(databaseUrl, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${templateDatabase}`);
  const template = connect(withDatabase(databaseUrl, templateDatabase), { max: 1 });
  await migrate(template);
  await template.end();

  const temporal = await localTemporal();
  const temporalAddress = temporal.address;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules,
    logger: quietLogger,
  });

  project.provide('databaseUrl', databaseUrl);
  project.provide('templateDatabase', templateDatabase);
  project.provide('temporalAddress', temporalAddress);
  project.provide('workflowBundle', code);

  return async () => {
    await temporal.teardown();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const noop = () => {};
/** A bundler logger that keeps warnings and errors only. */
export const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: console.warn,
  error: console.error,
  log: noop,
};
