/**
 * Records one run of the service layer's reconcile workflow into test/histories/, for the
 * replay test (as test/replay/record-histories.ts does for the cluster's workflows). Run it
 * again whenever the reconcile workflow changes on purpose, keeping the earlier recording
 * under a `.before-<change>` name:
 *
 *     npx tsx test/replay/record-services-history.ts [suffix]
 *
 * It starts a dev server and a scratch database of its own (bench/services-stack.ts), declares
 * a service of two replicas and records the run its schedule started first.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { format, resolveConfig } from 'prettier';
import { startServicesStack } from '../../bench/services-stack.ts';
import { RECONCILE_WORKFLOW, scheduleId } from '../../services/schedules.ts';

const HISTORIES_DIR = fileURLToPath(new URL('../histories/', import.meta.url));

Runtime.install({ logger: new DefaultLogger('ERROR') });
const suffix = process.argv[2] ? `.${process.argv[2]}` : '';
const stack = await startServicesStack({ hosts: 2, projects: ['shop'], pool: 5 });
try {
  await stack.services.services.create.mutate({
    project: 'shop',
    name: 'web',
    template: { vcpus: 1, memoryMiB: 64, image: 'base', nics: [{ network: 'default' }] },
    replicas: 2,
    everySeconds: 3600,
  });
  const schedule = stack.temporal.schedule.getHandle(scheduleId('shop', 'web'));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const action = (await schedule.describe()).info.recentActions[0]?.action;
    if (action?.type === 'startWorkflow') {
      const { workflowId, firstExecutionRunId } = action.workflow;
      const handle = stack.temporal.workflow.getHandle(workflowId, firstExecutionRunId);
      await handle.result();
      const file = path.join(
        HISTORIES_DIR,
        `${RECONCILE_WORKFLOW}.reconcile_shop_web${suffix}.json`,
      );
      const json = historyToJSON(await handle.fetchHistory());
      const options = (await resolveConfig(file)) ?? {};
      await writeFile(file, await format(json, { ...options, filepath: file }));
      console.log(`recorded ${workflowId} into ${file}`);
      break;
    }
    if (Date.now() > deadline) throw new Error('the schedule started no run in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
} finally {
  await stack.close();
}
process.exit(0);
