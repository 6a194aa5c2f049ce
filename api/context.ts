import type { Client } from '@temporalio/client';
import type { HostUriPolicy } from '../drivers/host-uri.ts';
import type { Sql } from '../registry/db.ts';

export interface ApiDeps {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  namespace: string;
  /** Base URL of the Temporal Web UI, for links to each operation. */
  temporalUiUrl: string;
  /**
   * What hosts.register accepts beyond a URI's shape (config.ts's drivers.hostUris); unset:
   * only the shape is checked here, and the worker checks the rest before it opens anything.
   */
  hostUris?: HostUriPolicy;
}

export type Context = ApiDeps;

/** Pure: tests build the same context the HTTP adapter does. */
export function createContextInner(deps: ApiDeps): Context {
  return { ...deps };
}
