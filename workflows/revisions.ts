import { patched } from '@temporalio/workflow';

/**
 * The revisions of the VM entity's steps, oldest first, each a patch id: a VM's entity
 * workflow lives as long as its VM, so a run begun before a revision must replay on the path
 * it took then.
 *
 * - `allocate-in-one-step`: placing a VM and claiming its volume keys are one step, and a VM
 *   without volumes goes from `placing` straight to `defining`.
 * - `boot-and-retire-in-one-step`: the create defines and starts the domain in one step; and
 *   decommission enters `decommissioning`, powers off and undefines the domain (which the
 *   driver first checks is this VM's) in one step, which also removes a VM with no volumes to
 *   wipe.
 */
const REVISIONS = ['allocate-in-one-step', 'boot-and-retire-in-one-step'] as const;

export type Revision = (typeof REVISIONS)[number];

/**
 * Whether this run takes the path of `revision`: true for a run that recorded it or any later
 * revision. Asked newest first, so a new run records a single marker, the newest revision's
 * (each marker costs an event and a search-attribute update), and a later revision implies
 * every earlier one; a run begun before replays with the markers it recorded then.
 */
export function since(revision: Revision): boolean {
  const oldest = REVISIONS.indexOf(revision);
  for (let i = REVISIONS.length - 1; i >= oldest; i--) {
    if (patched(REVISIONS[i]!)) return true;
  }
  return false;
}
