import { layerApi } from '../../api/mount.ts';
import { cloudRouter } from './router.ts';

/** The cloud's APIs (api/mount.ts): /cloud/trpc, /cloud/api and /cloud/openapi.json. */
export const CLOUD_API = layerApi('cloud', cloudRouter, {
  title: 'vagoth cloud',
  description:
    'Users, projects, quotas and instances across clusters. Every call carries a cloud ' +
    'token (Authorization: Bearer vgc_...).',
});
