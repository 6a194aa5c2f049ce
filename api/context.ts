import type { Client } from '@temporalio/client';
import type { PlacementPolicy } from '../allocator/place.ts';
import type { Sql } from '../registry/db.ts';

export interface ApiDeps {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  namespace: string;
  /** Base URL of the Temporal Web UI, for links to each operation. */
  temporalUiUrl: string;
  /** The cluster's placement policy (the workers' too), for requests that name none. */
  placementPolicy: PlacementPolicy;
}

export type Context = ApiDeps;

/** Pure: tests build the same context the HTTP adapter does. */
export function createContextInner(deps: ApiDeps): Context {
  return { ...deps };
}
