import { patched, workflowInfo } from '@temporalio/workflow';

/**
 * The revisions of the VM entity's steps, oldest first, each a patch id: a VM's entity
 * workflow lives as long as its VM, so a run begun before a revision must replay on the path
 * it took then.
 *
 * When an old path goes: the path a run begun before `x` takes at `since('x')` (marked "Old
 * path" there) may be removed, with the call, once both hold below; `x` stays in REVISIONS
 * (since() compares memos by their place in it).
 *
 * 1. No open run began before `x`. A run begins at the revision its memo names (a continued
 *    run at the newest: continueAsNew replays none of the old history); one with no memo
 *    began before the memo existed, so before every revision. A run that began before `x`
 *    may still replay that path, even after it records `x`'s marker. An operator lists the
 *    open VM runs with the revision each began at (`none`: no memo):
 *
 *        temporal workflow list -o jsonl \
 *          --query 'WorkflowType="vmEntity" AND ExecutionStatus="Running"' |
 *          jq -r '[.execution.workflowId, .memo.fields.revision // "none"] | @tsv'
 *
 *    Every line must name `x` or a revision listed after it. Other workflow types never call
 *    since(). A run that still blocks goes once its VM is decommissioned, or continues as
 *    new (when Temporal suggests it: its history has grown long).
 * 2. The recorded histories that may replay that path are retired in the same change: those
 *    in test/histories/ whose start event's memo names a revision before `x`, or none
 *    (a workflow kind left with none is recorded afresh: test/replay/record-histories.ts).
 *
 * - `allocate-in-one-step`: placing a VM and claiming its volume keys are one step, and a VM
 *   without volumes goes from `placing` straight to `defining`.
 * - `boot-and-retire-in-one-step`: the create defines and starts the domain in one step; and
 *   decommission enters `decommissioning`, powers off and undefines the domain (which the
 *   driver first checks is this VM's) in one step, which also removes a VM with no volumes to
 *   wipe.
 * - `disks-move-with-vm`: a migrate's move copies the VM's local volumes to the target (and
 *   checks them) before it commits; afterwards only the source's local volumes are wiped,
 *   never those in shared pools (`wipeMovedVolumes`, where runs before it call
 *   `deprovisionVolumes`).
 * - `act-after-acceptance`: an operation takes no step in the workflow task that accepted
 *   it; when its turn comes in that same task, a 1 ms timer first makes the acceptance
 *   durable. A task can be thrown away after its update handlers ran (the server then aborts
 *   those updates, and the client sends them again, to be judged anew): a local activity run
 *   in it would leave the registry where the persisted history never took the VM.
 * - `failed-move-wipes-target`: a migrate that fails wipes what it made on the target (the
 *   volumes it provisioned there, on record under the target since the move claimed them)
 *   before it gives the hold back (`discardMoveTarget`).
 * - `operator-window`: the run keeps its search attributes (common/search-attributes.ts) up to
 *   date: an upsert of those that changed as each operation ends, before it waits on an
 *   ordinary activity, and as the run ends (vm-window.ts' operatorWindow).
 */
const REVISIONS = [
  'allocate-in-one-step',
  'boot-and-retire-in-one-step',
  'disks-move-with-vm',
  'act-after-acceptance',
  'failed-move-wipes-target',
  'operator-window',
] as const;

export type Revision = (typeof REVISIONS)[number];

const LATEST: Revision = REVISIONS[REVISIONS.length - 1]!;

/** The memo key that names the revision a run began at (the Temporal UI shows it). */
const MEMO_KEY = 'revision';

/**
 * The memo to start a run with (a new VM's, or a continued one's): it pins the run to the
 * newest revision, so the run takes every revision's path without a patch marker. A marker
 * costs an event and a TemporalChangeVersion search-attribute update: measured on the bench's
 * floor lifecycle, one marker added about 5 ms of CPU a lifecycle, most of it the server's.
 */
export function revisionMemo(): Record<string, Revision> {
  return { [MEMO_KEY]: LATEST };
}

/**
 * Whether this run takes the path of `revision`: true for a run whose memo pins it at that
 * revision or a later one, or that recorded the marker of that revision or of a later one.
 * Runs begun before their memo named a revision (or at a revision this code does not know)
 * go by markers alone, as they always did: asked newest first, so such a run records a single
 * marker, and a later revision implies every earlier one. A revision added after a run began
 * is asked by its marker, so a long-lived run takes it from its next step on.
 */
export function since(revision: Revision): boolean {
  const asked = REVISIONS.indexOf(revision);
  const pinned = REVISIONS.indexOf(workflowInfo().memo?.[MEMO_KEY] as Revision);
  if (pinned >= asked) return true;
  for (let i = REVISIONS.length - 1; i > pinned && i >= asked; i--) {
    if (patched(REVISIONS[i]!)) return true;
  }
  return false;
}
