import type { CloudVerbs } from './cloud.ts';
import { CLUSTER, CLUSTER_DETAIL, ME, TOKEN, USER } from './cloud-views.ts';
import { readSecretFile, toSecretFile } from './files.ts';
import { table } from './table.ts';

/** The cloud admin's verbs (clusters, users) and everyone's cloud tokens. */
export const ADMIN_VERBS: CloudVerbs = {
  async 'clusters list'({ api, show }) {
    show(await api.clusters.list.query(), (cs) => table(CLUSTER, cs));
  },
  async 'clusters get'({ api, args, show }) {
    show(await api.clusters.get.query({ name: args.name() }), (c) => table(CLUSTER_DETAIL, [c]));
  },
  async 'clusters register'({ api, args, show }) {
    const { url, region } = args.values;
    const driver = args.choice('driver', ['local', 'vagoth'], true);
    const tokenFile = args.values['token-file'];
    const answer = await api.clusters.register.mutate({
      name: args.name(),
      driver,
      ...(url === undefined ? {} : { url }),
      ...(tokenFile === undefined ? {} : { token: readSecretFile(tokenFile) }),
      ...(region === undefined ? {} : { region }),
      tags: args.pairs('tag'),
    });
    show(answer, (c) => table(CLUSTER_DETAIL, [{ ...c, unreachable: null }]));
  },
  async 'clusters drain'({ api, args, show }) {
    const name = args.name();
    const answer = await api.clusters.drain.mutate({ name, draining: !args.values.undrain });
    show(answer, (c) => table(CLUSTER, [c]));
  },
  async 'clusters remove'({ api, args, show }) {
    const answer = await api.clusters.remove.mutate({ name: args.name() });
    show(answer, (a) => `cluster ${a.name} removed`);
  },

  async 'users list'({ api, show }) {
    show(await api.users.list.query(), (us) => table(USER, us));
  },
  async 'users get'({ api, args, show }) {
    show(await api.users.get.query({ user: args.name() }), (u) => table(USER, [u]));
  },
  async 'users create'({ api, args, show }) {
    const answer = await api.users.create.mutate({
      name: args.name(),
      admin: args.values.admin === true,
    });
    show(answer, (u) => table(USER, [u]));
  },
  async 'users disable'({ api, args, show }) {
    show(await api.users.disable.mutate({ user: args.name() }), (u) => table(USER, [u]));
  },
  async 'users me'({ api, args, show }) {
    args.operands();
    show(await api.users.me.query(), (u) => table(ME, [u]));
  },

  async 'cloud-tokens list'({ api, args, show }) {
    args.operands();
    const { user } = args.values;
    show(await api.tokens.list.query(user === undefined ? {} : { user }), (ts) => table(TOKEN, ts));
  },
  async 'cloud-tokens create'({ api, args, show }) {
    const { user, project } = args.values;
    const expires = args.int('expires');
    const input = {
      name: args.name(),
      ...(user === undefined ? {} : { user }),
      // Narrowing a token is what it is, not where the caller works: not $VAGOTH_PROJECT.
      ...(project === undefined ? {} : { project }),
      readOnly: args.values['read-only'] === true,
      ...(expires === undefined ? {} : { expiresInSeconds: expires }),
    };
    const create = () => api.tokens.create.mutate(input);
    const file = args.values['token-file'];
    if (file === undefined) {
      const made = await create();
      return show(
        made,
        (t) => `${table(TOKEN, [t])}\n\ntoken: ${t.token}\n(shown once: kept only as a hash)`,
      );
    }
    // The secret goes to the file alone, never to the terminal.
    const { token: _secret, ...made } = await toSecretFile(file, create, (t) => t.token);
    show({ ...made, tokenFile: file }, (t) => `${table(TOKEN, [t])}\n\ntoken written to ${file}`);
  },
  async 'cloud-tokens revoke'({ api, args, show }) {
    show(await api.tokens.revoke.mutate({ id: args.name('id') }), (t) => table(TOKEN, [t]));
  },
};
