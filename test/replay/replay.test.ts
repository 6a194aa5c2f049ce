import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowsPath } from '../../workers/compose.ts';

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
    const types = new Set(recorded.map((r) => r.file.split('.')[0]));
    expect(types.size).toBeGreaterThanOrEqual(2);
    expect(recorded.length).toBeGreaterThanOrEqual(3);
  });

  it("replay on today's workflow code without a determinism error", async () => {
    const failures: string[] = [];
    const histories = recorded.map(({ workflowId, history }) => ({ workflowId, history }));
    for await (const result of Worker.runReplayHistories(options, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });

  it('would notice a change: a history whose first activity differs fails to replay', async () => {
    // Tamper with the recording, not the code: the same mismatch a reordered step produces.
    const target = recorded.find((r) =>
      r.history.events?.some((e) => e.activityTaskScheduledEventAttributes),
    )!;
    const history = historyFromJSON(target.json);
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType = { name: 'notAStepOfOurs' };
    await expect(Worker.runReplayHistory(options, history, target.workflowId)).rejects.toThrow(
      /nondetermin/i,
    );
  });
});
