import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../../api/router.ts';

/** The API as a cloud layer calls it: over HTTP, plain JSON, with a bearer token. */
export function apiClient(url: string, token: string | undefined) {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  return createTRPCClient<AppRouter>({ links: [httpBatchLink({ url, headers })] });
}

export type ApiClient = ReturnType<typeof apiClient>;

/** Polls an operation until it leaves `running`. */
export async function waitForOperation(
  api: ApiClient,
  op: { id: string; runId: string; updateId?: string | undefined },
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { id, runId, updateId } = op;
    const detail = await api.operations.get.query({ id, runId, updateId });
    if (detail.status !== 'running' && detail.status !== 'queued') return detail;
    if (Date.now() > deadline)
      throw new Error(`operation ${op.id} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function errorCode(err: unknown): string | undefined {
  return err instanceof TRPCClientError
    ? (err.data as { code?: string } | undefined)?.code
    : undefined;
}
