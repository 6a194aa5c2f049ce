import type { Client } from '@temporalio/client';
import type postgres from 'postgres';
import type { TtlCache } from '../../common/ttl-cache.ts';
import type { CloudCaller, CloudDriver } from '../clouds/driver.ts';
import type { OtherClouds } from '../clouds/index.ts';

export interface ServicesDeps {
  sql: postgres.Sql;
  /** Where the services' schedules live (the reconcile workflows run on its task queue). */
  temporal: Client;
  /** The cloud the services' instances are in, reached with a caller's or a service's token. */
  cloudFor(token: string): CloudDriver;
  /** Other vagoth clouds a service's placements may name (config.services.clouds). */
  clouds?: OtherClouds;
  /** Who each token stands for in the cloud, remembered a few seconds. */
  callers: TtlCache<CloudCaller | null>;
}

export type ServicesContext = ServicesDeps & { authorization: string | undefined };

/** After the token check: who calls, as the cloud says, and the cloud with its token. */
export type AuthedServicesContext = ServicesContext & {
  caller: CloudCaller;
  cloud: CloudDriver;
};
