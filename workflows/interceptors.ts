import {
  defaultPayloadConverter,
  workflowInfo,
  type ActivityInput,
  type LocalActivityInput,
  type Next,
  type WorkflowInterceptors,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { POSITION_HEADER, type RunPosition } from '../common/run-position.ts';

// Every activity and local activity carries a one-line summary naming what it acts on, which
// the Temporal UI shows in the run's history and timeline (`define web-1 on sim-2`, `wipe
// web-1's volumes on sim-1`). Set by a workflow interceptor (workers/compose.ts registers this
// module), so no call site spells it out. A summary is user metadata, which replay does not
// check: this module adds no command, so a worker without it replays the same. Headers are
// not checked either: the position header (common/run-position.ts) changes no command.

/** What a workflow acts on (`web-1`, `host sim-1`) and where that is now, if anywhere. */
export interface Subject {
  name: string;
  host: string | null;
}

/** What the VM entity says of its VM as it changes: where it is, and which VM it is. */
export interface Located {
  host: string | null;
  vmId: string | null;
}

// A workflow's own module state (each run has its own).
let whereNow: (() => Located) | undefined;
let chain = { generation: 0, inherited: false };

/**
 * The VM entity says where its VM is as it changes, how many continueAsNew runs came before
 * this one, and whether one of them began by a Reset: its steps then carry their position
 * (common/run-position.ts).
 */
export function locateSubject(
  where: () => Located,
  runsBefore: { generation: number; inherited: boolean },
): void {
  whereNow = where;
  chain = runsBefore;
}

function subject(): Subject {
  const { workflowId } = workflowInfo();
  const [kind, name = workflowId] = workflowId.split(':');
  if (kind === 'vm') return { name, host: whereNow?.().host ?? null };
  if (kind === 'host') return { name: `host ${name}`, host: null };
  return { name: workflowId, host: null };
}

const on = (host: string | null) => (host === null ? '' : ` on ${host}`);
const str = (v: unknown) => (typeof v === 'string' ? v : null);

/** A step's summary, from its activity type and arguments (pure: tests call it). */
export function summarize(activityType: string, args: readonly unknown[], s: Subject): string {
  const { name, host } = s;
  switch (activityType) {
    case 'claimVm':
      return `claim ${name}'s name and addresses`;
    case 'allocateVm':
    case 'placeVm':
      return `place ${name}`;
    case 'claimVolumes':
      return `claim ${name}'s volumes`;
    case 'provisionVolumes':
      return `provision ${name}'s volumes${on(host)}`;
    case 'defineDomain':
      return `define ${name}${on(host)}`;
    case 'startDomain':
      return `start ${name}${on(host)}`;
    case 'waitRunning':
      return `wait until ${name} runs${on(host)}`;
    case 'stopDomain':
      return `power off ${name}${on(host)}`;
    case 'shutdownDomain':
      return `shut down ${name}${on(host)}`;
    case 'rebootDomain':
      return `reboot ${name}${on(host)}`;
    case 'undefineDomain':
      return `undefine ${name}${on(host)}`;
    case 'transitionVm':
      return `record ${name} ${str(args[2]) ?? 'state'}`;
    case 'reserveMigration':
      return `reserve room for ${name} on ${str(args[1]) ?? 'a host the allocator picks'}`;
    case 'migrateDomain':
      return `move ${name}${host === null ? '' : ` from ${host}`} to ${str(args[1]) ?? '?'}${args[2] === true ? ' live' : ''}`;
    case 'commitMigration':
      return `record ${name} on its new host`;
    case 'releaseMigration':
      return `release ${name}'s room on its move's target`;
    case 'discardMoveTarget':
      return `discard what ${name}'s failed move made on ${str(args[1]) ?? '?'}`;
    case 'deprovisionVolumes':
      return `wipe ${name}'s volumes${on(str(args[1]) ?? host)}`;
    case 'wipeMovedVolumes':
      return `wipe ${name}'s volumes left on ${str(args[1]) ?? '?'}`;
    case 'releaseVolumes':
      return `release ${name}'s volume keys`;
    case 'releaseAllocation':
      return `release ${name}'s room${on(host)}`;
    case 'retireVm':
      return `power off and undefine ${name}${on(host)}`;
    case 'deleteVm':
      return `forget ${name} and free its keys`;
    default:
      return `${activityType} ${name}${on(host)}`;
  }
}

/**
 * The step's position in its history, for a VM's entity workflow: the worker records it with
 * each registry change the step makes and, in a run begun by a Reset, checks it first.
 */
function position(): RunPosition | null {
  if (whereNow === undefined) return null;
  const { runId, originalExecutionRunId, historyLength, continuedFromExecutionRunId } =
    workflowInfo();
  return {
    run: runId,
    reset: runId !== originalExecutionRunId,
    ...chain,
    predecessor: continuedFromExecutionRunId ?? null,
    at: historyLength,
    vmId: whereNow().vmId,
  };
}

/** The step as scheduled: with its summary and, for a VM's steps, its position header. */
function annotated<I extends ActivityInput | LocalActivityInput>(input: I): I {
  const at = position();
  const summary = input.options.summary ?? summarize(input.activityType, input.args, subject());
  return {
    ...input,
    options: { ...input.options, summary },
    ...(at === null
      ? {}
      : {
          headers: { ...input.headers, [POSITION_HEADER]: defaultPayloadConverter.toPayload(at) },
        }),
  };
}

const outbound: WorkflowOutboundCallsInterceptor = {
  scheduleActivity(
    input: ActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ) {
    return next(annotated(input));
  },
  scheduleLocalActivity: (
    input: LocalActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ) => next(annotated(input)),
};

export const interceptors = (): WorkflowInterceptors => ({ outbound: [outbound] });
