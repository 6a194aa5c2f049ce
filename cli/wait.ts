/** An operation's progress as the API tells it (the cluster's `operations.get`). */
export interface Progress {
  kind: string;
  status: string;
  error: { message: string } | null;
}

/** Asks until the operation is no longer queued or running, and answers how it ended. */
export async function untilSettled<T extends Progress>(ask: () => Promise<T>): Promise<T> {
  for (;;) {
    const detail = await ask();
    if (detail.status !== 'running' && detail.status !== 'queued') return detail;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** An operation that ended other than completed is the command's failure. */
export function mustHaveCompleted(detail: Progress): void {
  if (detail.status !== 'completed') {
    throw new Error(`${detail.kind} ${detail.status}: ${detail.error?.message ?? ''}`);
  }
}
