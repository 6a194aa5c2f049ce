import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  patched,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Attributes, OperationStatus } from '../common/search-attributes.ts';
import { rootFailure } from './failure.ts';
import { evacuateHost, type EvacuationReport } from './host-evacuate.ts';
import { drainHost, registry, type DrainReport } from './host-maintenance.ts';
import { upsertChanged } from './vm-window.ts';

export type HostOperationKind = 'maintenance' | 'activate' | 'evacuate';

export interface HostOperationRecord {
  seq: number;
  kind: HostOperationKind;
  status: 'queued' | 'running';
  /** Set on a drain an activate has stopped: why it starts no further move. */
  stopping: string | null;
}

/** The host's operations: the one running first, then those waiting their turn. */
export interface HostOperationsStatus {
  host: string;
  line: HostOperationRecord[];
}

/** Starts a drain, or joins the one under way; answers its report. */
export const hostMaintenanceUpdate = defineUpdate<DrainReport>('maintenance');
/** Stops any drain (the moves under way finish), then puts the host back into placement. */
export const hostActivateUpdate = defineUpdate<void>('activate');
/** Starts an evacuation of the fenced host, or joins the one under way; answers its report. */
export const hostEvacuateUpdate = defineUpdate<EvacuationReport>('evacuate');
export const hostOperationsQuery = defineQuery<HostOperationsStatus>('status');

interface Operation extends HostOperationRecord {
  result: Promise<unknown>;
}

/**
 * `host:<name>`: the one place a host's state-changing operations run, one at a time in the
 * order they arrive, so a drain, an activate and an evacuation of one host never interleave.
 * The API reaches it with update-with-start, so it exists only while operations are pending
 * and ends once they are answered. What an operator would expect of a race:
 * - maintenance asked while a drain is under way joins it (one drain, one report);
 * - activate during a drain stops it: no further VM starts moving, the moves under way
 *   finish (each VM ends on exactly one host, its room there alone), then the host is
 *   active; the drain's report lists the VMs it did not reach as stayed, saying so. So the
 *   host is never active while a drain still moves VMs off it;
 * - maintenance after an activate waits its turn and drains again: the later request wins;
 * - activate is refused while an evacuation is queued or under way (it cannot be undone
 *   half-way, and the host is fenced); an evacuation asked twice is one evacuation.
 */
export async function hostEntity({ name }: { name: string }): Promise<void> {
  const { runId } = workflowInfo();
  const line: Operation[] = [];
  let seq = 0;
  // Runs begun before `host-window` showed nothing as they went: they replay without it.
  const window = patched('host-window');

  /**
   * What the Temporal UI shows of the host's operations: the one running (or the last, as
   * it ended) in the search attributes, the line in the current details.
   */
  function show(
    op: Operation,
    status: OperationStatus,
    failure?: { message: string; type?: string | null },
  ) {
    if (!window) return;
    const wanted: Attributes = {
      VagothKind: 'host',
      VagothHost: name,
      VagothOperation: op.kind,
      VagothOperationStatus: status,
      ...(failure ? { VagothFailure: failure.type ?? 'Internal' } : {}),
    };
    upsertChanged(wanted);
    const waiting = line.filter((o) => o.status === 'queued').map((o) => o.kind);
    setCurrentDetails(
      [
        `**host ${name}**: ${op.kind} ${status}`,
        ...(failure ? [`Failed: ${failure.message}`] : []),
        ...(waiting.length > 0 ? [`Waiting: ${waiting.join(', ')}`] : []),
      ].join('\n\n'),
    );
  }

  function enqueue<R>(kind: HostOperationKind, run: (op: Operation) => Promise<R>): Promise<R> {
    const op: Operation = { seq: ++seq, kind, status: 'queued', stopping: null, result: null! };
    line.push(op);
    const result = (async () => {
      await condition(() => line[0] === op);
      op.status = 'running';
      show(op, 'running');
      try {
        const value = await run(op);
        show(op, 'completed');
        return value;
      } catch (err) {
        const failure = rootFailure(err);
        show(op, 'failed', failure);
        throw failure;
      } finally {
        line.shift();
      }
    })();
    op.result = result;
    return result;
  }

  /** Callers asking for what is already last in line get its answer rather than a rerun. */
  const joinable = (kind: HostOperationKind) => {
    const last = line.at(-1);
    return last?.kind === kind && last.stopping === null ? last : undefined;
  };
  // Update ids of the VM moves: unique to this run and operation (see moveVmOff).
  const key = (op: Operation) => `${runId}:${op.seq}`;

  setHandler(hostOperationsQuery, () => ({
    host: name,
    line: line.map(({ seq, kind, status, stopping }) => ({ seq, kind, status, stopping })),
  }));

  setHandler(hostMaintenanceUpdate, async () => {
    const under = joinable('maintenance');
    if (under) return under.result as Promise<DrainReport>;
    return enqueue('maintenance', (op) => drainHost(name, key(op), () => op.stopping));
  });

  setHandler(
    hostActivateUpdate,
    async () => {
      for (const op of line) {
        if (op.kind === 'maintenance' && op.stopping === null) {
          op.stopping = `drain stopped before moving it: host ${name} was activated`;
        }
      }
      const under = joinable('activate');
      if (under) return under.result as Promise<void>;
      return enqueue('activate', () => registry.setHostState(name, 'active'));
    },
    {
      validator: () => {
        if (line.some((op) => op.kind === 'evacuate')) {
          throw ApplicationFailure.create({
            type: 'StateConflict',
            message: `host ${name} is being evacuated; activate it once the evacuation has ended`,
            nonRetryable: true,
          });
        }
      },
    },
  );

  setHandler(hostEvacuateUpdate, async () => {
    const under = joinable('evacuate');
    if (under) return under.result as Promise<EvacuationReport>;
    return enqueue('evacuate', (op) => evacuateHost(name, key(op)));
  });

  // Handlers are set before the first await: an update-with-start's update finds them.
  await condition(() => line.length === 0 && allHandlersFinished());
}
