import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { VmFacts } from '../common/messages.ts';
import {
  attributeKey,
  attributeUpdates,
  SEARCH_ATTRIBUTE_NAMES,
  type Attributes,
  type OperationStatus,
} from '../common/search-attributes.ts';
import { since } from './revisions.ts';
import type { OperationRecord } from './vm-entity.ts';

// What the Temporal UI shows of a VM's workflow: its search attributes, for the list's filters,
// and its current details, in words (pure functions of the entity's state: tests call them),
// and how the entity keeps them up to date (operatorWindow).

/** The operation the attributes speak of: the one in progress, else the last one closed. */
function operationShown(queue: readonly OperationRecord[], records: readonly OperationRecord[]) {
  if (queue[0]?.status === 'running') return queue[0];
  return records.findLast((r) => r.status === 'completed' || r.status === 'failed');
}

/** The VM's search attributes: its state and host, and how its latest operation stands. */
export function vmAttributes(
  vm: VmFacts,
  queue: readonly OperationRecord[],
  records: readonly OperationRecord[],
): Attributes {
  const op = operationShown(queue, records);
  const attributes: Attributes = { VagothKind: 'vm', VagothVmState: vm.state };
  if (vm.host !== null) attributes.VagothHost = vm.host;
  if (op) {
    attributes.VagothOperation = op.kind;
    attributes.VagothOperationStatus = op.status as OperationStatus;
    if (op.status === 'failed') attributes.VagothFailure = op.error?.type ?? 'Internal';
  }
  return attributes;
}

/** The attributes a VM's workflow starts with: its create under way. */
export function createAttributes(): Attributes {
  return {
    VagothKind: 'vm',
    VagothVmState: 'pending',
    VagothOperation: 'create',
    VagothOperationStatus: 'running',
  };
}

const code = (s: string) => `\`${s.replaceAll('`', "'")}\``;

/** How to run a failed operation again: from the UI's "Send an Update", or the CLI. */
function retryHint(vm: VmFacts, failed: OperationRecord): string {
  const retry =
    `To retry: send the Update ${code('retry')} with no input ("Send an Update" on this page), ` +
    `or run \`vagoth operations retry ${vm.name}\``;
  if (failed.kind === 'create') {
    if (vm.state === 'gone') {
      return 'To retry: create the VM again (`vagoth vms create`); nothing of this attempt is left.';
    }
    return vm.state === 'failed' && vm.host === null
      ? `${retry}: it places and boots the VM again, with the same request.`
      : `To retry: decommission it (Update ${code('decommission')}, no input), then create it again.`;
  }
  if (failed.kind === 'evacuate') {
    return 'To retry: evacuate its host again (`vagoth hosts evacuate`), which checks first that the host is fenced.';
  }
  const input = JSON.stringify(failed.args ?? []);
  return (
    `${retry}: it runs ${code(failed.kind)} again with input ${code(input)}, as the Update ` +
    `${code(failed.kind)} with that input would. The same checks apply as through the API: a ` +
    'retry the VM state does not allow is refused, with the reason.'
  );
}

/**
 * The workflow's current details (the UI's "Current details"): the VM's state and host, the
 * operation in progress and its step, those waiting, and the last failure with its reason and
 * how to retry it. Markdown, as the UI renders it.
 */
export function vmDetails(
  vm: VmFacts,
  queue: readonly OperationRecord[],
  records: readonly OperationRecord[],
): string {
  const where = vm.host === null ? 'on no host' : `on host ${code(vm.host)}`;
  const lines = [`VM ${code(vm.name)} is ${code(vm.state)} ${where}.`];
  const current = queue[0]?.status === 'running' ? queue[0] : undefined;
  if (current) {
    lines.push(
      `In progress: ${code(current.kind)} (accepted ${current.acceptedAt}), step: ${code(vm.state)}.`,
    );
  }
  const waiting = queue.filter((r) => r.status === 'queued').map((r) => code(r.kind));
  lines.push(waiting.length > 0 ? `Waiting: ${waiting.join(', ')}.` : 'Waiting: nothing.');
  const last = records.findLast((r) => r.status === 'completed' || r.status === 'failed');
  if (last?.status === 'failed') {
    const type = last.error?.type ?? 'Internal';
    lines.push(
      `Last operation ${code(last.kind)} failed (${type}) at ${last.closedAt}: ${last.error?.message ?? 'no reason given'}`,
      retryHint(vm, last),
    );
  } else if (last) {
    lines.push(`Last operation: ${code(last.kind)}, completed at ${last.closedAt}.`);
  }
  if (vm.error !== null && last?.status !== 'failed') lines.push(`Error: ${vm.error}`);
  return lines.join('\n\n');
}

/** `target`, with `onChange` called after each assignment that changes one of its fields. */
export function watched<T extends object>(target: T, onChange: () => void): T {
  return new Proxy(target, {
    set(t, field, value) {
      const before: unknown = Reflect.get(t, field);
      Reflect.set(t, field, value);
      if (before !== value) onChange();
      return true;
    },
  });
}

/**
 * Keeps what the Temporal UI shows of this run up to date. Its current details (no event)
 * follow every change, once the activation's work is done (`changed`). Its search attributes
 * are upserted (an event, for those that changed) by `publish`: as each operation ends, before
 * the run waits on an ordinary activity (proxies.ts' onLeavingTask), and as it ends: the
 * steps of one task cost one upsert at most, and a run stuck waiting shows where it is. Runs
 * begun before `operator-window` upsert nothing until they record its marker (revisions.ts).
 */
export function operatorWindow(attributes: () => Attributes, details: () => string) {
  let detailsDue = false;
  let upserting = false;
  return {
    changed() {
      if (detailsDue) return;
      detailsDue = true;
      void Promise.resolve().then(() => {
        detailsDue = false;
        setCurrentDetails(details());
      });
    },
    publish() {
      setCurrentDetails(details());
      upserting ||= since('operator-window');
      if (!upserting) return;
      upsertChanged(attributes());
    },
  };
}

/** Upserts the attributes `wanted` changes from those the run shows now: none, no event. */
export function upsertChanged(wanted: Attributes): void {
  const { typedSearchAttributes } = workflowInfo();
  const shown: Attributes = {};
  for (const name of SEARCH_ATTRIBUTE_NAMES) {
    const value = typedSearchAttributes.get(attributeKey(name));
    if (typeof value === 'string') shown[name] = value;
  }
  const updates = attributeUpdates(shown, wanted);
  if (updates.length > 0) upsertSearchAttributes(updates);
}
