import type { CloudCommand, CloudVerbs } from './cloud.ts';
import type { CloudApi, CloudOut } from './cloud-client.ts';
import { field, table, when, type Column } from './table.ts';

type Grant = CloudOut['networks']['list'][number];
type Change = CloudOut['networks']['grant'];

const GRANT: Column<Grant>[] = [
  field('CLUSTER', 'cluster'),
  field('NAME', 'name'),
  field('OWNER', 'owner'),
  field('GRANTED', 'grantedAt', when),
];

const CHANGE: Column<Change>[] = [
  field('CLUSTER', 'cluster'),
  field('NAME', 'name'),
  field('OWNER', 'owner'),
];

/** What a project may use of its clusters' networks or images. */
const list =
  (kind: 'networks' | 'images') =>
  async ({ api, args, show }: CloudCommand) => {
    args.operands();
    show(await api[kind].list.query({ project: args.project() }), (gs) => table(GRANT, gs));
  };

type Target = { cluster: string; name: string; project?: string };

/** Gives or takes back a cluster's network or image: to one project, or (--public) to all. */
const change =
  (what: 'network' | 'image', call: (api: CloudApi, target: Target) => Promise<Change>) =>
  async ({ api, args, show }: CloudCommand) => {
    const [cluster, name] = args.operands('cluster', what);
    const answer = await call(api, { cluster: cluster!, name: name!, ...args.grantee() });
    show(answer, (c) => table(CHANGE, [c]));
  };

/** The networks and images of clusters that projects' instances may use. */
export const GRANT_VERBS: CloudVerbs = {
  'projects networks': list('networks'),
  'projects images': list('images'),
  'clusters grant-network': change('network', (api, { name, ...t }) =>
    api.networks.grant.mutate({ ...t, network: name }),
  ),
  'clusters revoke-network': change('network', (api, { name, ...t }) =>
    api.networks.revoke.mutate({ ...t, network: name }),
  ),
  'clusters publish-image': change('image', (api, { name, ...t }) =>
    api.images.publish.mutate({ ...t, image: name }),
  ),
  'clusters unpublish-image': change('image', (api, { name, ...t }) =>
    api.images.unpublish.mutate({ ...t, image: name }),
  ),
};
