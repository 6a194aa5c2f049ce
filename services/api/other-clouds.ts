import type { CloudDriver } from '../clouds/driver.ts';
import type { OtherClouds } from '../clouds/index.ts';
import type { CloudToken } from '../cloud-tokens.ts';
import { CloudCredentialsError, CloudRefusedError, CloudUnreachableError } from '../errors.ts';
import { cloudsNamed } from '../placements.ts';
import { holdMinted, revokeTokens, type Revoker } from '../revocations.ts';
import type { Placement } from '../store.ts';

/** What a caller gives for each other cloud: its token there and the project there. */
export type Credentials = Record<string, { token: string; project: string }>;

/**
 * Before anything is asked of any cloud: every cloud a placement names must be one the
 * operator allows (`placements.N.cloud`), and credentials are taken only for clouds the
 * placements name (`clouds.<name>`); on a create, every cloud named needs them.
 */
export function checkOtherClouds(
  allowed: OtherClouds | undefined,
  placements: readonly Placement[] | null | undefined,
  given: Credentials,
  options: { everyOneNeeded: boolean },
): void {
  (placements ?? []).forEach((p, n) => {
    if (p.cloud !== undefined && !allowed?.has(p.cloud)) {
      throw new CloudCredentialsError(
        `placements.${n}.cloud`,
        'BAD_REQUEST',
        `no cloud ${JSON.stringify(p.cloud)} is known here (the operator's VAGOTH_SERVICES_CLOUDS)`,
      );
    }
  });
  const named = cloudsNamed(placements);
  for (const cloud of Object.keys(given)) {
    if (!named.includes(cloud)) {
      throw new CloudCredentialsError(
        `clouds.${cloud}`,
        'BAD_REQUEST',
        `no placement names cloud ${cloud}`,
      );
    }
  }
  if (!options.everyOneNeeded) return;
  for (const cloud of named) {
    if (!Object.hasOwn(given, cloud)) {
      throw new CloudCredentialsError(
        `clouds.${cloud}`,
        'BAD_REQUEST',
        `is required: a placement names cloud ${cloud} ({ token, project } there)`,
      );
    }
  }
}

/** A caller's credentials as the cloud they are for judges them, in the API's terms. */
function refusal(field: string, cloud: string, err: unknown): Error {
  if (err instanceof CloudUnreachableError) {
    return new CloudCredentialsError(field, 'BAD_GATEWAY', `cloud ${cloud} did not answer`);
  }
  if (err instanceof CloudRefusedError && err.code === 'UNAUTHORIZED') {
    return new CloudCredentialsError(
      `${field}.token`,
      'BAD_REQUEST',
      `cloud ${cloud} does not know this token`,
    );
  }
  if (err instanceof CloudRefusedError) {
    return new CloudCredentialsError(
      field,
      'BAD_REQUEST',
      `cloud ${cloud} refused: ${err.message}`,
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Checks each credential with its cloud (the token's user must be a member or an admin of the
 * project there) and mints the service's own token there, narrowed to that project. All or
 * nothing: one refused, those already minted are revoked (or queued to be).
 */
export async function mintCloudTokens(
  deps: Revoker,
  service: { project: string; name: string },
  given: Credentials,
): Promise<CloudToken[]> {
  const allowed = deps.clouds;
  const serviceName = service.name;
  const minted: CloudToken[] = [];
  try {
    for (const [cloud, { token, project }] of Object.entries(given)) {
      const field = `clouds.${cloud}`;
      const driver: CloudDriver | undefined = allowed?.driver(cloud, token);
      if (!driver) {
        throw new CloudCredentialsError(field, 'BAD_REQUEST', `no cloud ${cloud} is known here`);
      }
      const caller = await driver.caller().catch((err: unknown) => {
        throw refusal(field, cloud, err);
      });
      const role = Object.hasOwn(caller.roles, project) ? caller.roles[project] : undefined;
      if (role !== 'admin' && role !== 'member') {
        throw new CloudCredentialsError(
          `${field}.project`,
          'FORBIDDEN',
          `the token's user is not a member of project ${project} in cloud ${cloud}`,
        );
      }
      const made = await driver
        .mintToken(`service-${serviceName}`, project)
        .catch((err: unknown) => {
          throw refusal(field, cloud, err);
        });
      const fresh = {
        cloud,
        project,
        token: made.token,
        tokenId: made.id,
        url: allowed?.urlOf(cloud) ?? null,
      };
      minted.push(fresh);
      await holdMinted(deps.sql, `${service.project}/${serviceName}`, [fresh]);
    }
  } catch (err) {
    await revokeTokens(deps, `${service.project}/${serviceName}`, minted);
    throw err;
  }
  return minted;
}
