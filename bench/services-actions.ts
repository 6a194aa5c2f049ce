// What one reconcile tick of the services costs in Temporal Cloud actions, counted from what
// the server recorded, as https://docs.temporal.io/cloud/actions bills them:
// - each schedule execution: 2 (Schedule Start), from the schedule's own count of actions taken;
// - in each run the tick started, from its history: the workflow started (1), each activity
//   attempt (ActivityTaskStarted's attempt), the local activities of one workflow task (1 for
//   all of its markers), each timer, search attribute upsert or properties change, signal
//   (received or sent), accepted update, and each child workflow (2: its start and its run).
// Queries and heartbeats leave no history; the reconcile workflow makes neither.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

export const ACTION_KINDS = [
  'schedule',
  'workflow',
  'activity',
  'local',
  'timer',
  'upsert',
  'signal',
  'update',
  'child',
] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];
export type Actions = Record<ActionKind, number>;

export const noActions = (): Actions =>
  Object.fromEntries(ACTION_KINDS.map((k) => [k, 0])) as Actions;

/** The billable actions one workflow run's history holds (the schedule's own aside). */
export function historyActions(events: temporal.api.history.v1.IHistoryEvent[]): Actions {
  const a = noActions();
  let markersThisTask = false;
  for (const e of events) {
    if (e.workflowTaskCompletedEventAttributes) markersThisTask = false;
    if (e.markerRecordedEventAttributes && !markersThisTask) {
      a.local += 1;
      markersThisTask = true;
    }
    if (e.workflowExecutionStartedEventAttributes) a.workflow += 1;
    if (e.activityTaskStartedEventAttributes)
      a.activity += e.activityTaskStartedEventAttributes.attempt ?? 1;
    if (e.timerStartedEventAttributes) a.timer += 1;
    if (e.upsertWorkflowSearchAttributesEventAttributes) a.upsert += 1;
    if (e.workflowPropertiesModifiedEventAttributes) a.upsert += 1;
    if (e.workflowExecutionSignaledEventAttributes) a.signal += 1;
    if (e.signalExternalWorkflowExecutionInitiatedEventAttributes) a.signal += 1;
    if (e.workflowExecutionUpdateAcceptedEventAttributes) a.update += 1;
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) a.child += 2;
  }
  return a;
}

/** How many actions each schedule has taken so far, by schedule id. */
export async function actionsTaken(client: Client, ids: string[]): Promise<Map<string, number>> {
  const described = await Promise.all(ids.map((id) => client.schedule.getHandle(id).describe()));
  return new Map(described.map((d) => [d.scheduleId, d.info.numActionsTaken]));
}

export interface TickCount {
  actions: Actions;
  /** Schedule executions, and workflow runs they started, since `before`. */
  executions: number;
  runs: number;
  /** The first run's start and the last one's close, by the server's clock (epoch ms). */
  firstStart: number;
  lastClose: number;
  /** Each activity attempt's time, started to completed (ms). */
  activityMs: number[];
  /** When each run passed each milestone, by the server's clock. */
  timeline: RunTimes[];
}

/**
 * One run's milestones (epoch ms, NaN where absent): the schedule's action taken, the run
 * started, its first workflow task scheduled, started (picked up by the worker) and completed,
 * its (first) activity scheduled, started and completed, and the run closed.
 */
export interface RunTimes {
  taken: number;
  started: number;
  wftScheduled: number;
  wftStarted: number;
  wftCompleted: number;
  actScheduled: number;
  actStarted: number;
  actCompleted: number;
  closed: number;
}

const msOf = (t: temporal.api.history.v1.IHistoryEvent['eventTime']) =>
  t ? Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;

/** The run's milestones (RunTimes) from its history; `taken` as the schedule said. */
export function runTimes(events: temporal.api.history.v1.IHistoryEvent[], taken = NaN): RunTimes {
  const r: RunTimes = {
    taken,
    started: NaN,
    wftScheduled: NaN,
    wftStarted: NaN,
    wftCompleted: NaN,
    actScheduled: NaN,
    actStarted: NaN,
    actCompleted: NaN,
    closed: NaN,
  };
  // The first of each: the first workflow task, the first activity's first attempt.
  const first = (k: keyof RunTimes, at: number) => {
    if (Number.isNaN(r[k])) r[k] = at;
  };
  for (const e of events) {
    const at = msOf(e.eventTime);
    if (e.workflowExecutionStartedEventAttributes) first('started', at);
    if (e.workflowTaskScheduledEventAttributes) first('wftScheduled', at);
    if (e.workflowTaskStartedEventAttributes) first('wftStarted', at);
    if (e.workflowTaskCompletedEventAttributes) first('wftCompleted', at);
    if (e.activityTaskScheduledEventAttributes) first('actScheduled', at);
    if (e.activityTaskStartedEventAttributes) first('actStarted', at);
    if (e.activityTaskCompletedEventAttributes) first('actCompleted', at);
    if (
      e.workflowExecutionCompletedEventAttributes ||
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTimedOutEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes
    )
      first('closed', at);
  }
  return r;
}

/**
 * When each run started and closed, and how long its activities ran: a local activity runs
 * inside a workflow task, so its time is that task's (started to completed, the markers it
 * recorded following).
 */
function times(events: temporal.api.history.v1.IHistoryEvent[], into: TickCount) {
  const started = new Map<string, number>();
  let taskStarted = NaN;
  let taskMs: number | null = null;
  for (const e of events) {
    const at = msOf(e.eventTime);
    if (e.workflowTaskStartedEventAttributes) taskStarted = at;
    if (e.workflowTaskCompletedEventAttributes) taskMs = at - taskStarted;
    if (e.markerRecordedEventAttributes && taskMs !== null) {
      into.activityMs.push(taskMs);
      taskMs = null;
    }
    if (e.workflowExecutionStartedEventAttributes) into.firstStart = Math.min(into.firstStart, at);
    if (e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes)
      into.lastClose = Math.max(into.lastClose, at);
    if (e.activityTaskStartedEventAttributes) started.set(String(e.eventId), at);
    const done = e.activityTaskCompletedEventAttributes;
    if (done) into.activityMs.push(at - (started.get(String(done.startedEventId)) ?? NaN));
  }
}

/**
 * The actions the schedules `ids` took since `before` (their counts then) and the runs they
 * started at or after `since`, each waited for until it closed.
 */
export async function tickActions(
  client: Client,
  before: Map<string, number>,
  since: Date,
): Promise<TickCount> {
  const total: TickCount = {
    actions: noActions(),
    executions: 0,
    runs: 0,
    firstStart: Infinity,
    lastClose: -Infinity,
    activityMs: [],
    timeline: [],
  };
  for (const [id, was] of before) {
    const d = await client.schedule.getHandle(id).describe();
    const executions = d.info.numActionsTaken - was;
    total.executions += executions;
    total.actions.schedule += 2 * executions;
    for (const r of d.info.recentActions) {
      if (r.takenAt < since || r.action.type !== 'startWorkflow') continue;
      const handle = client.workflow.getHandle(
        r.action.workflow.workflowId,
        r.action.workflow.firstExecutionRunId,
      );
      await handle.result().catch(() => {}); // a failed run's actions count too
      const events = (await handle.fetchHistory()).events ?? [];
      const found = historyActions(events);
      times(events, total);
      total.timeline.push(runTimes(events, r.takenAt.getTime()));
      for (const k of ACTION_KINDS) total.actions[k] += found[k];
      total.runs += 1;
    }
  }
  return total;
}

/** `3.00 (schedule 2, workflow 1, activity 1)`: actions per unit, the kinds that occurred. */
export function actionsPer(actions: Actions, units: number): string {
  const sum = ACTION_KINDS.reduce((s, k) => s + actions[k], 0);
  const parts = ACTION_KINDS.filter((k) => actions[k] > 0).map(
    (k) => `${k} ${+(actions[k] / units).toFixed(2)}`,
  );
  return `${(sum / units).toFixed(2)} (${parts.join(', ')})`;
}
