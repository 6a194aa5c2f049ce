import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowsPath } from '../../workers/compose.ts';
import { servicesWorkflowsPath } from '../../workers/services.ts';

// Recorded by test/replay/record-histories.ts; see there for when to record them again.
const DIR = path.resolve(import.meta.dirname, '../histories');

Runtime.install({ logger: new DefaultLogger('ERROR') });

interface Recorded {
  file: string;
  workflowId: string;
  history: ReturnType<typeof historyFromJSON>;
  json: unknown;
}

let recorded: Recorded[];
let options: ReplayWorkerOptions;
/** The service layer's workflows: a bundle and a worker of their own. */
const SERVICES_KINDS = new Set(['serviceReconcile', 'reconcileServiceWorkflow']);
const servicesOptions: ReplayWorkerOptions = {
  workflowsPath: servicesWorkflowsPath,
  replayName: 'vagoth-services-replay',
};
const kindOf = (r: Recorded) => r.file.split('.')[0]!;
beforeAll(async () => {
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();
  recorded = await Promise.all(
    files.map(async (file) => {
      const json: unknown = JSON.parse(await readFile(path.join(DIR, file), 'utf8'));
      return {
        file,
        workflowId: file.replace(/\.json$/, ''),
        history: historyFromJSON(json),
        json,
      };
    }),
  );
  options = { workflowsPath, replayName: 'vagoth-replay' };
});

describe('committed workflow histories', () => {
  it('cover every kind of workflow vagoth starts', () => {
    const types = new Set(recorded.map(kindOf));
    expect(types.size).toBeGreaterThanOrEqual(2);
    expect(recorded.length).toBeGreaterThanOrEqual(3);
  });

  it("replay on today's workflow code without a determinism error", async () => {
    const failures: string[] = [];
    for (const [opts, services] of [
      [options, false],
      [servicesOptions, true],
    ] as const) {
      const histories = recorded
        .filter((r) => SERVICES_KINDS.has(kindOf(r)) === services)
        .map(({ workflowId, history }) => ({ workflowId, history }));
      for await (const result of Worker.runReplayHistories(opts, histories)) {
        if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('would notice a change: a history whose first activity differs fails to replay', async () => {
    // Tamper with the recording, not the code: the same mismatch a reordered step produces.
    const target = recorded.find(
      (r) =>
        !SERVICES_KINDS.has(kindOf(r)) &&
        r.history.events?.some((e) => e.activityTaskScheduledEventAttributes),
    )!;
    const history = historyFromJSON(target.json);
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType = { name: 'notAStepOfOurs' };
    await expect(Worker.runReplayHistory(options, history, target.workflowId)).rejects.toThrow(
      /nondetermin/i,
    );
  });

  it("replays the service layer's reconciles, and would notice a changed step there too", async () => {
    const reconciles = recorded.filter((r) => SERVICES_KINDS.has(kindOf(r)));
    // A run of each reconcile workflow: the older (its step an activity) and today's.
    expect(new Set(reconciles.map(kindOf))).toEqual(SERVICES_KINDS);
    for (const r of reconciles) {
      const history = historyFromJSON(r.json);
      const step = history.events!.find(
        (e) =>
          e.activityTaskScheduledEventAttributes ??
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
      )!;
      if (step.activityTaskScheduledEventAttributes) {
        step.activityTaskScheduledEventAttributes.activityType = { name: 'notAStepOfOurs' };
      } else {
        // A local activity's marker names its type in its data: one that names another
        // activity is a different step.
        const data = step.markerRecordedEventAttributes!.details!.data!.payloads![0]!;
        const text = Buffer.from(data.data!).toString('utf8');
        data.data = Buffer.from(text.replace(/"reconcileService"/, '"notAStepOfOurs"'));
      }
      await expect(Worker.runReplayHistory(servicesOptions, history, r.workflowId)).rejects.toThrow(
        /nondetermin/i,
      );
    }
  });
});
