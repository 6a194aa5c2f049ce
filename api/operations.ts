import { QueryNotRegisteredError, type Client } from '@temporalio/client';
import { NotFoundError } from '../registry/errors.ts';
import type { OperationRef } from '../registry/types.ts';
import { operationQuery } from '../workflows/index.ts';

/**
 * An operation is a workflow run (`id`, `runId`) or, on a VM, an Update within the VM's
 * entity workflow `vm:<name>`: then `updateId` names it (`create` for the create saga).
 */
export interface Operation {
  id: string;
  runId: string;
  updateId?: string;
  kind: string;
  /** The operation's page in the Temporal Web UI: its history, and a retry button. */
  url: string;
}

export type OperationStatus =
  'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';

export interface OperationDetail extends Operation {
  status: OperationStatus;
  startedAt: string;
  closedAt: string | null;
  error: { type: string | null; message: string } | null;
  /** What the caller should know of how it went (a migrate asked live that went cold: why). */
  note?: string;
}

export function operationUrl(
  uiUrl: string,
  namespace: string,
  workflowId: string,
  runId: string,
): string {
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

export function toOperation(ref: OperationRef, uiUrl: string, namespace: string): Operation {
  return {
    id: ref.workflowId,
    runId: ref.runId,
    ...(ref.updateId === undefined ? {} : { updateId: ref.updateId }),
    kind: ref.kind,
    url: operationUrl(uiUrl, namespace, ref.workflowId, ref.runId),
  };
}

const STATUS: Record<string, OperationStatus> = {
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'terminated',
  TIMED_OUT: 'timed_out',
  CONTINUED_AS_NEW: 'completed',
};

const KINDS: Record<string, string> = {
  vmEntity: 'vm',
  registerHost: 'register',
  importImage: 'import',
  deleteImage: 'delete-image',
};

/** The innermost failure's type and message: the reason, without Temporal's wrapping. */
function reason(err: unknown): { type: string | null; message: string } {
  let last: unknown = err;
  let type: string | null = null;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    last = e;
    const t = (e as { type?: unknown }).type;
    if (type === null && typeof t === 'string') type = t;
    if (typeof t === 'string') break;
  }
  return { type, message: last instanceof Error ? last.message : String(last) };
}

/** An Update within a VM's entity workflow, as that workflow records it (queried, not stored). */
async function describeUpdate(
  temporal: Client,
  uiUrl: string,
  namespace: string,
  id: string,
  runId: string | undefined,
  updateId: string,
): Promise<OperationDetail> {
  const notFound = new NotFoundError('operation', `${id}/${updateId}`);
  const record = await temporal.workflow
    .getHandle(id, runId)
    .query(operationQuery, updateId)
    .catch((err: unknown) => {
      // Only a VM's entity workflow answers this query: any other workflow has no updates.
      throw err instanceof QueryNotRegisteredError ? notFound : err;
    });
  if (!record) throw notFound;
  return {
    ...toOperation(
      { kind: record.kind, workflowId: id, runId: record.runId, updateId },
      uiUrl,
      namespace,
    ),
    status: record.status,
    startedAt: record.acceptedAt,
    closedAt: record.closedAt,
    error: record.error,
    ...(record.note === undefined ? {} : { note: record.note }),
  };
}

export async function describeOperation(
  temporal: Client,
  uiUrl: string,
  namespace: string,
  id: string,
  runId?: string,
  updateId?: string,
): Promise<OperationDetail> {
  if (updateId !== undefined) {
    return describeUpdate(temporal, uiUrl, namespace, id, runId, updateId);
  }
  const handle = temporal.workflow.getHandle(id, runId);
  const d = await handle.describe();
  const status = STATUS[d.status.name] ?? 'running';
  let error: OperationDetail['error'] = null;
  if (
    status === 'failed' ||
    status === 'timed_out' ||
    status === 'cancelled' ||
    status === 'terminated'
  ) {
    error = await handle.result().then(
      () => null,
      (err: unknown) => reason(err),
    );
  }
  return {
    ...toOperation(
      { kind: KINDS[d.type] ?? d.type, workflowId: d.workflowId, runId: d.runId },
      uiUrl,
      namespace,
    ),
    status,
    startedAt: d.startTime.toISOString(),
    closedAt: d.closeTime?.toISOString() ?? null,
    error,
  };
}
