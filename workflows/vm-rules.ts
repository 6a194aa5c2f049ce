import type { OperationRecord } from './vm-entity.ts';
import type {
  EntityState,
  MigrateRequest,
  OperationKind,
  ShutdownArgs,
} from '../common/messages.ts';

/** The state an accepted operation leaves the VM in, if it succeeds. */
export function targetOf(kind: OperationKind, before: EntityState): EntityState {
  switch (kind) {
    case 'create':
    case 'start':
    case 'reboot':
    case 'reprovision':
      return 'running';
    case 'stop':
    case 'shutdown':
      return 'stopped';
    case 'migrate':
    case 'evacuate':
      return before;
    case 'decommission':
      return 'gone';
  }
}

/**
 * The state the VM will be in once every accepted operation has run: what a new request is
 * judged against, since it runs after them (a stop queued behind a start sees `running`).
 */
export function projectedState(
  current: EntityState,
  queued: readonly OperationKind[],
): EntityState {
  return queued.reduce<EntityState>((state, kind) => targetOf(kind, state), current);
}

/**
 * Why `kind` cannot be accepted now, or null when it can. Pure, so the validators (which must
 * not touch history) and the tests share it. Asking for the state a VM is already headed to is
 * accepted and does nothing: stop on a stopped VM, start on a running one.
 */
export function rejection(
  name: string,
  kind: OperationKind,
  projected: EntityState,
  host: string | null,
  args: { migrate?: MigrateRequest; shutdown?: ShutdownArgs } = {},
): string | null {
  if (projected === 'gone') return `vm ${name} is being decommissioned or is gone`;
  if (kind === 'decommission') return null;
  if (projected === 'failed') {
    // A failed VM that still has its host can be reinstalled there: its room is still held.
    if (kind === 'reprovision' && host !== null) return null;
    return host === null
      ? `vm ${name} failed; only decommission is possible`
      : `vm ${name} failed; only reprovision or decommission is possible`;
  }
  switch (kind) {
    case 'create':
      return `vm ${name} already exists`;
    case 'start':
    case 'stop':
    case 'reprovision':
    case 'evacuate':
      return null;
    case 'shutdown': {
      const t = args.shutdown?.timeoutMs;
      if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > 3_600_000)) {
        return 'timeoutMs: must be an integer from 0 to 3600000';
      }
      return null;
    }
    case 'reboot':
      return projected === 'running' ? null : `vm ${name} is ${projected}; start it instead`;
    case 'migrate': {
      const to = args.migrate?.host;
      if (to !== undefined && to === host) return `vm ${name} already runs on ${to}`;
      return null;
    }
  }
}

/**
 * Why the VM's latest operation `last` cannot be run again now, or null when it can: it must
 * have ended, failed, and be allowed as a new request of its kind would be (`args`: its input, as
 * `rejection` takes it). A failed create is retried only on a VM kept `failed` on no host
 * (`kept`: its keys still claimed); one removed has nothing left to retry.
 */
export function retryRejection(
  name: string,
  last: Pick<OperationRecord, 'kind' | 'status'> | undefined,
  projected: EntityState,
  host: string | null,
  kept: boolean,
  args: Parameters<typeof rejection>[4],
): string | null {
  if (!last) return `vm ${name} has no operation to retry`;
  if (last.status === 'queued' || last.status === 'running') {
    return `vm ${name}'s last operation, ${last.kind}, is ${last.status}: retry once it has ended`;
  }
  if (last.status !== 'failed') {
    return `vm ${name}'s last operation, ${last.kind}, ${last.status}: nothing to retry`;
  }
  if (last.kind === 'evacuate') {
    // Only the host's evacuation checks again that its host is fenced and silent.
    return `vm ${name}'s evacuation is retried through its host: hosts.evacuate`;
  }
  if (last.kind !== 'create') return rejection(name, last.kind, projected, host, args);
  if (kept && projected === 'failed' && host === null) return null;
  return projected === 'gone'
    ? `vm ${name} is being decommissioned or is gone`
    : `vm ${name}'s failed create left nothing to place again; decommission it and create it again`;
}
