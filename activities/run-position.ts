import { AsyncLocalStorage } from 'node:async_hooks';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import {
  asRunPosition,
  POSITION_HEADER,
  resetRefusal,
  type RecordedPosition,
  type ResetPoint,
  type RunPosition,
} from '../common/run-position.ts';
import type { FailureType } from '../common/vocabulary.ts';
import type { Sql } from '../registry/db.ts';
import { recordedPosition } from '../registry/vms.ts';

// The worker's half of common/run-position.ts: each step of a VM's entity workflow runs with
// its position at hand (what its registry changes record), and a step of a run begun by a
// Reset runs only once the registry is found to hold nothing its history lacks.

const steps = new AsyncLocalStorage<RunPosition>();

/** The position of the step running now, for the registry change it makes; none outside one. */
export function stepPosition(): RecordedPosition | undefined {
  const p = steps.getStore();
  return p && { run: p.run, generation: p.generation, at: p.at };
}

type WorkflowService = temporal.api.workflowservice.v1.WorkflowService;

const RESET =
  proto.temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW;

/**
 * Where the run was reset from: the WorkflowTaskFailed event a Reset writes into the new
 * run's history, with the base run's id. Null when the history holds none (a run reset
 * before this server wrote them).
 */
async function findResetPoint(
  service: WorkflowService,
  namespace: string,
  workflowId: string,
  runId: string,
): Promise<ResetPoint | null> {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await service.getWorkflowExecutionHistory({
      namespace,
      execution: { workflowId, runId },
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const event of page.history?.events ?? []) {
      const failed = event.workflowTaskFailedEventAttributes;
      if (failed?.cause === RESET && failed.baseRunId) {
        return { baseRun: failed.baseRunId, eventId: Number(event.eventId) };
      }
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return null;
}

export interface PositionDeps {
  sql: Sql;
  service: WorkflowService;
  namespace: string;
}

/**
 * The activity interceptor: runs each step with its position, and refuses a step of a reset
 * run where resetRefusal says so (non-retryable `ResetRefused`: retrying cannot change what
 * the registry already holds). A reset run's reset point is looked up once per run.
 */
export function positionInterceptor({
  sql,
  service,
  namespace,
}: PositionDeps): ActivityInterceptorsFactory {
  const points = new Map<string, Promise<ResetPoint | null>>();
  function resetPoint(workflowId: string, runId: string) {
    let point = points.get(runId);
    if (!point) {
      point = findResetPoint(service, namespace, workflowId, runId);
      point.catch(() => points.delete(runId)); // a lookup that failed is tried again
      if (points.size >= 1000) points.delete(points.keys().next().value!);
      points.set(runId, point);
    }
    return point;
  }

  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const header = input.headers[POSITION_HEADER];
        const position = header ? asRunPosition(defaultPayloadConverter.fromPayload(header)) : null;
        const run = ctx.info.workflowExecution;
        if (position === null || !run) return next(input);
        if (position.reset) {
          const point = await resetPoint(run.workflowId, run.runId);
          const recorded =
            position.vmId === null
              ? { exists: false as const }
              : await recordedPosition(sql, position.vmId);
          const name = run.workflowId.replace(/^vm:/, '');
          const why = resetRefusal(position, point, recorded, name);
          if (why !== null) {
            throw ApplicationFailure.create({
              type: 'ResetRefused' satisfies FailureType,
              message: why,
              nonRetryable: true,
            });
          }
        }
        return steps.run(position, () => next(input));
      },
    },
  });
}
