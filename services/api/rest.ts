import { layerApi } from '../../api/mount.ts';
import { servicesRouter } from './router.ts';

/** The service layer's APIs (api/mount.ts): /services/trpc, /services/api and its document. */
export const SERVICES_API = layerApi('services', servicesRouter, {
  title: 'vagoth services',
  description:
    'Services: a template and a number of replicas that a Temporal Schedule keeps running in ' +
    'a project of the cloud. Every call carries a cloud token (Authorization: Bearer vgc_...).',
});
