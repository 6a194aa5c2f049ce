import { CloudRefusedError } from '../errors.ts';
import { holdMinted, revokeQueued, revokeTokens } from '../revocations.ts';
import { replaceServiceToken, serviceWithToken } from '../store.ts';
import type { AuthedServicesContext } from './context.ts';

/**
 * A service acts with a token of its creator's, narrowed to its project; the cloud revokes it
 * with the token that made it, or once it expires. When a member changes the service (update,
 * resume, delete) and its token no longer opens the cloud, a new one is made from the caller's
 * and the dead one's place taken, so a service is never stranded by its creator leaving.
 */
export async function keepServiceToken(ctx: AuthedServicesContext, serviceId: string) {
  const held = await serviceWithToken(ctx.sql, serviceId);
  if (!held) return;
  const works = await ctx
    .cloudFor(held.token)
    .caller()
    .then(
      () => true,
      (err: unknown) => !(err instanceof CloudRefusedError && err.code === 'UNAUTHORIZED'),
    );
  if (works) return;
  const { service } = held;
  const label = `${service.project}/${service.name}`;
  const minted = await ctx.cloud.mintToken(`service-${service.name}`, service.project);
  await holdMinted(ctx.sql, label, [{ cloud: null, token: minted.token, tokenId: minted.id }]);
  // Only in the dead one's place: a call beside this one may have renewed it first.
  const unneeded = await replaceServiceToken(ctx.sql, serviceId, ctx.caller.user, minted, {
    token: held.token,
    service: label,
  }).catch(async (err: unknown) => {
    await revokeTokens(ctx, label, [{ cloud: null, token: minted.token, tokenId: minted.id }]);
    throw err;
  });
  await revokeQueued(ctx, unneeded);
}
