import type { Client } from '@temporalio/client';
import type { OperationRef } from '../registry/types.ts';

export interface Operation {
  id: string;
  runId: string;
  kind: string;
  /** The operation's page in the Temporal Web UI: its history, and a retry button. */
  url: string;
}

export type OperationStatus =
  'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';

export interface OperationDetail extends Operation {
  status: OperationStatus;
  startedAt: string;
  closedAt: string | null;
  error: { type: string | null; message: string } | null;
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
  createVm: 'create',
  decommissionVm: 'decommission',
  registerHost: 'register',
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

export async function describeOperation(
  temporal: Client,
  uiUrl: string,
  namespace: string,
  id: string,
  runId?: string,
): Promise<OperationDetail> {
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
