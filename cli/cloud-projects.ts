import type { CloudVerbs } from './cloud.ts';
import { EVENT, MEMBER, PROJECT, projectDetail, quotaTable } from './cloud-views.ts';
import { table } from './table.ts';
import { UsageError } from './usage.ts';

const QUOTA_FLAGS = [
  ['instances', 'instances'],
  ['vcpus', 'vcpus'],
  ['memory', 'memoryMiB'],
  ['disk', 'diskGiB'],
  ['ips', 'ips'],
] as const;

/** Projects, their members, history and quotas. */
export const PROJECT_VERBS: CloudVerbs = {
  async 'projects list'({ api, args, show }) {
    args.operands();
    show(await api.projects.list.query(), (ps) => table(PROJECT, ps));
  },
  async 'projects get'({ api, args, show }) {
    show(await api.projects.get.query({ project: args.name('project') }), projectDetail);
  },
  async 'projects create'({ api, args, show }) {
    const answer = await api.projects.create.mutate({ project: args.name('project') });
    show(answer, (p) => table(PROJECT, [{ ...p, role: 'admin' }]));
  },
  async 'projects delete'({ api, args, show }) {
    const answer = await api.projects.delete.mutate({ project: args.name('project') });
    show(answer, (a) => `project ${a.project} deleted`);
  },
  async 'projects add-member'({ api, args, show }) {
    const [project, user] = args.operands('project', 'user');
    const role = args.choice('role', ['member', 'reader'], true);
    const members = await api.projects.addMember.mutate({ project: project!, user: user!, role });
    show(members, (ms) => table(MEMBER, ms));
  },
  async 'projects remove-member'({ api, args, show }) {
    const [project, user] = args.operands('project', 'user');
    const members = await api.projects.removeMember.mutate({ project: project!, user: user! });
    show(members, (ms) => table(MEMBER, ms));
  },
  async 'projects events'({ api, args, show }) {
    args.operands();
    const limit = args.int('limit');
    const { before } = args.values;
    const events = await api.projects.events.query({
      project: args.project(),
      ...(limit === undefined ? {} : { limit }),
      ...(before === undefined ? {} : { before }),
    });
    show(events, (es) => table(EVENT, es));
  },

  async 'quotas get'({ api, args, show }) {
    args.operands();
    show(await api.quotas.get.query({ project: args.project() }), quotaTable);
  },
  /** Changes the limits given; the others stay as they are (the API's own merge). */
  async 'quotas set'({ api, args, show }) {
    args.operands();
    const given = QUOTA_FLAGS.map(([flag, key]) => [key, args.limit(flag)] as const).filter(
      ([, limit]) => limit !== undefined,
    );
    if (given.length === 0) {
      throw new UsageError('quotas set needs --instances, --vcpus, --memory, --disk or --ips');
    }
    const answer = await api.quotas.set.mutate({
      project: args.project(),
      ...Object.fromEntries(given),
    });
    show(answer, quotaTable);
  },
};
