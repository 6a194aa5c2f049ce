import { readFileSync } from 'node:fs';
import type { CloudCommand, CloudVerbs } from './cloud.ts';
import type { CloudOut } from './cloud-client.ts';
import { HISTORY, INSTANCE, OPERATION, instanceDetail } from './cloud-views.ts';
import { readKeyFiles } from './files.ts';
import { parseNic } from './nic.ts';
import { table } from './table.ts';
import { UsageError } from './usage.ts';
import { mustHaveCompleted, untilSettled } from './wait.ts';

type Operation = CloudOut['instances']['start']['operation'];
const VERBS = ['start', 'stop', 'shutdown', 'reboot', 'reprovision'] as const;

/**
 * Without --wait, the operation the cluster started; with it, the instance once the operation
 * has ended (an operation that failed is the command's failure).
 */
async function finish(
  { api, args, show }: CloudCommand,
  at: { project: string; name: string },
  op: Operation,
) {
  if (!args.values.wait) return show(op, (o) => table(OPERATION, [o]));
  const { id, runId, updateId } = op;
  const ref = { ...at, id, runId, ...(updateId === undefined ? {} : { updateId }) };
  mustHaveCompleted(await untilSettled(() => api.instances.operation.query(ref)));
  show(await api.instances.get.query(at), instanceDetail);
}

/** instances.create's input from the command line; files named are read here. */
function createInput({ args }: CloudCommand) {
  const { image, cluster, region } = args.values;
  if (image === undefined) throw new UsageError('instances create needs --image IMAGE');
  const policy = args.choice('policy', ['spread', 'pack']);
  const disk = args.int('disk');
  const tags = args.pairs('require');
  const userData = args.values['user-data-file'];
  return {
    project: args.project(),
    name: args.name(),
    vcpus: args.required('vcpus'),
    memoryMiB: args.required('memory'),
    image,
    ...(disk === undefined ? {} : { diskGiB: disk }),
    nics: (args.values.nic ?? []).map((spec) => parseNic(spec, ['ip'])),
    ...(cluster === undefined ? {} : { cluster }),
    ...(region === undefined ? {} : { region }),
    placement: {
      ...(Object.keys(tags).length ? { tags } : {}),
      ...(policy === undefined ? {} : { policy }),
    },
    sshAuthorizedKeys: readKeyFiles(args.values['ssh-key-file']),
    ...(userData === undefined ? {} : { userData: readFileSync(userData, 'utf8') }),
  };
}

/** A project's instances: every verb acts in --project (or $VAGOTH_PROJECT). */
export const INSTANCE_VERBS: CloudVerbs = {
  async 'instances list'({ api, args, show }) {
    args.operands();
    const { cluster, after } = args.values;
    const limit = args.int('limit');
    const page = await api.instances.list.query({
      project: args.project(),
      ...(cluster === undefined ? {} : { cluster }),
      ...(limit === undefined ? {} : { limit }),
      ...(after === undefined ? {} : { after }),
    });
    show(page, (is) => table(INSTANCE, is));
  },
  async 'instances get'({ api, args, show }) {
    const project = args.project();
    show(await api.instances.get.query({ project, name: args.name() }), instanceDetail);
  },
  async 'instances operations'({ api, args, show }) {
    const project = args.project();
    const limit = args.int('limit');
    const history = await api.instances.operations.query({
      project,
      name: args.name(),
      ...(limit === undefined ? {} : { limit }),
    });
    show(history, (h) => table(HISTORY, h));
  },
  async 'instances create'(c) {
    const input = createInput(c);
    const { operation } = await c.api.instances.create.mutate(input);
    await finish(c, input, operation);
  },
  ...Object.fromEntries(
    VERBS.map((verb) => [
      `instances ${verb}`,
      async (c: CloudCommand) => {
        const project = c.args.project();
        const name = c.args.name();
        const { operation } = await c.api.instances[verb].mutate({ project, name });
        await finish(c, { project, name }, operation);
      },
    ]),
  ),
  /**
   * The instance's name and quota are free at once; its VM's decommission goes on in its
   * cluster, which --wait follows to its end.
   */
  async 'instances delete'({ api, args, show }) {
    const project = args.project();
    const name = args.name();
    const answer = await api.instances.delete.mutate({ project, name });
    if (args.values.wait && answer.operation) {
      const { id, runId, updateId } = answer.operation;
      const ref = { project, name, id, runId, ...(updateId === undefined ? {} : { updateId }) };
      mustHaveCompleted(await untilSettled(() => api.instances.operation.query(ref)));
    }
    show(answer, (a) => `instance ${a.name} deleted${a.operation ? ` (${a.operation.url})` : ''}`);
  },
};
