import {
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowClientInterceptor,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

/**
 * Update ids whose start the server answered with the outcome already: a validator's refusal
 * (or an operation done before the answer came). With it the API tells a refusal from an
 * acceptance without asking the workflow: a query sent while the update's workflow task is
 * open makes the worker rebuild the VM's workflow from its history, which doubled the
 * workflow work of every operation (measured: 21 activations a lifecycle instead of 10).
 */
const settled = new Set<string>();
/** An id nobody asks about (an update started elsewhere with this client) is dropped in time. */
const REMEMBERED = 10_000;

export const updateOutcomes: WorkflowClientInterceptor = {
  async startUpdate(input, next) {
    const output = await next(input);
    if (output.outcome) {
      settled.add(output.updateId);
      if (settled.size > REMEMBERED) settled.delete(settled.values().next().value!);
    }
    return output;
  },
};

/** Whether `client` was built with updateOutcomes (connectClient's clients are). */
export function seesUpdateOutcomes(client: Client): boolean {
  const { workflow } = client.options.interceptors;
  return Array.isArray(workflow) && workflow.includes(updateOutcomes);
}

/** True, once, if the server answered the update's start with its outcome. */
export function settledAtOnce(updateId: string): boolean {
  return settled.delete(updateId);
}

/** A validator's refusal, as opposed to an accepted operation that failed. */
export function isRefusal(err: unknown): boolean {
  return (
    err instanceof WorkflowUpdateFailedError &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === 'OperationRejected'
  );
}
