/**
 * Where in its workflow's history a VM step was taken, and the check that keeps a Reset from
 * replaying side effects the registry has moved past. Pure (no imports): the workflow
 * interceptor builds a position, the worker's activity interceptor checks it.
 *
 * Every step a VM's entity workflow schedules carries its position in a header
 * (`POSITION_HEADER`); every change of the VM's registry state records the position of the
 * step that made it. A Temporal Reset starts a new run that replays its history up to the
 * reset point and then runs the workflow's code again from there: its steps would act again
 * on a VM the registry may have carried further since (stop a VM that was started again
 * after, undefine one that moved). So a step of a reset run runs only while the registry
 * holds no change the reset run's history lacks.
 */

/** The header each step of a VM's entity workflow carries. */
export const POSITION_HEADER = 'vagoth-position';

/** What the registry records of the step that last changed a VM's state. */
export interface RecordedPosition {
  /** The run that took the step. */
  run: string;
  /** How many continueAsNew runs came before that run (0 for the first). */
  generation: number;
  /** The history length of the workflow task that scheduled the step. */
  at: number;
}

/** A step's position, as its header carries it. */
export interface RunPosition extends RecordedPosition {
  /** The run began by a Temporal Reset (its run id is not the one its history began with). */
  reset: boolean;
  /**
   * A run it continued from (continueAsNew), however far back, began by a Reset: that run's
   * facts may have been stale, so every run after it is checked as a reset run is.
   */
  inherited: boolean;
  /** The run this one continued from, if any: the facts it carried include its changes. */
  predecessor: string | null;
  /** The VM the run acts on, once claimed. */
  vmId: string | null;
}

/** Where the run was reset from: found in its history (the reset's WorkflowTaskFailed). */
export interface ResetPoint {
  /** The run that was reset. */
  baseRun: string;
  /** The event the new run's history diverges at: steps of the base run at or past it are not in it. */
  eventId: number;
}

/**
 * What the registry holds of the step's VM: `at` is null where a change came from outside the
 * VM's workflow (the monitor clears it) or before positions were recorded.
 */
export type Recorded = { exists: false } | { exists: true; at: RecordedPosition | null };

/**
 * Why a step of a reset run (or of a run continued from one) must not run, or null when it
 * may: only while the change the registry recorded last of its VM is one this run's history
 * holds: taken by this run, by the run it continued from, by the base run before the reset
 * point, or (in a chain reset only now) by an earlier run of the chain. Anything else,
 * including a run reset twice whose base never changed the VM, is refused: a refusal costs a
 * Reset, a wrong guess a VM.
 */
export function resetRefusal(
  step: RunPosition,
  point: ResetPoint | null,
  recorded: Recorded,
  vmName: string,
): string | null {
  if (!step.reset && !step.inherited) return null;
  const advice =
    'Reset is refused for a VM workflow where it would act again on what changed after its ' +
    'reset point; send `retry` to run a failed operation again, or reset to the latest ' +
    'workflow task';
  if (step.vmId === null) {
    return `this run of vm ${vmName} was reset to before its VM was claimed. ${advice}`;
  }
  if (!recorded.exists) {
    return `vm ${vmName} was removed after the point this run was reset to. ${advice}`;
  }
  const last = recorded.at;
  if (last === null) {
    return (
      `vm ${vmName}'s registry state was last changed by no step of its workflow (the monitor, ` +
      `or a run older than this check). ${advice}`
    );
  }
  if (last.run === step.run || last.run === step.predecessor) return null;
  if (!step.inherited && last.generation < step.generation) return null;
  if (
    step.reset &&
    point !== null &&
    last.run === point.baseRun &&
    last.generation === step.generation &&
    last.at < point.eventId
  ) {
    return null;
  }
  return (
    `vm ${vmName}'s registry state was changed at event ${last.at} of run ${last.run}, ` +
    `after the point this run was reset to${point === null ? '' : ` (event ${point.eventId} of run ${point.baseRun})`}. ${advice}`
  );
}

/** A header's value as a position, or null when it is not one (a step of another workflow). */
export function asRunPosition(value: unknown): RunPosition | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Partial<RunPosition>;
  if (
    typeof v.run !== 'string' ||
    typeof v.reset !== 'boolean' ||
    typeof v.inherited !== 'boolean' ||
    !(v.predecessor === null || typeof v.predecessor === 'string') ||
    !Number.isSafeInteger(v.generation) ||
    !Number.isSafeInteger(v.at) ||
    !(v.vmId === null || typeof v.vmId === 'string')
  ) {
    return null;
  }
  return {
    run: v.run,
    reset: v.reset,
    inherited: v.inherited,
    predecessor: v.predecessor,
    generation: v.generation!,
    at: v.at!,
    vmId: v.vmId,
  };
}
