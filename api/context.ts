import type { Client } from '@temporalio/client';
import type { PlacementPolicy } from '../allocator/place.ts';
import type { HostUriPolicy } from '../drivers/host-uri.ts';
import type { ImageSourcePolicy } from '../images/sources.ts';
import type { Sql } from '../registry/db.ts';
import type { Principal } from './authorize.ts';
import type { TokenVerifier } from './token-verifier.ts';

export interface ApiDeps {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  namespace: string;
  /** Base URL of the Temporal Web UI, for links to each operation. */
  temporalUiUrl: string;
  /** The cluster's placement policy (the workers' too), for requests that name none. */
  placementPolicy: PlacementPolicy;
  tokens: TokenVerifier;
  /**
   * What hosts.register accepts beyond a URI's shape (config.ts's drivers.hostUris); unset:
   * only the shape is checked here, and the worker checks the rest before it opens anything.
   */
  hostUris?: HostUriPolicy;
  /**
   * Where images.create may read from (config.ts's images.sources); unset: nowhere. The
   * worker checks again, against its own lists, before it opens anything.
   */
  imageSources?: ImageSourcePolicy;
}

/**
 * Who is calling. Over HTTP, always the request's `Authorization` header; a caller that
 * vagoth runs in its own process (the embedded stack registering its simulated hosts) may be
 * given a principal instead, which no request can set.
 */
export type Credentials = { authorization: string | undefined } | { principal: Principal };

export type Context = ApiDeps & { credentials: Credentials };

/** Pure: tests build the same context the HTTP adapter does. */
export function createContextInner(deps: ApiDeps, credentials: Credentials): Context {
  return { ...deps, credentials };
}

/** The context of a caller holding `token`, checked as an HTTP request's would be. */
export function bearer(token: string): Credentials {
  return { authorization: `Bearer ${token}` };
}
