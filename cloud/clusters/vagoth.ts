import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../../api/router.ts';
import type { z } from 'zod';
import { ClusterUnreachableError } from '../errors.ts';
import {
  createAnswer,
  explainAnswer,
  hostsAnswer,
  operationAnswer,
  operationDetailAnswer,
  vmAnswer,
  vmsAnswer,
} from './answers.ts';
import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import {
  sumCapacity,
  whyUnplaceable,
  type ClusterCapacity,
  type ClusterDriver,
  type ClusterHost,
  type ClusterOperationRef,
  type ClusterPlacementInput,
  type ClusterVmInput,
  type VmVerb,
} from './driver.ts';

/** A cluster's answer is read up to this size; a longer one is not its API. */
export const ANSWER_MAX_BYTES = 8 * 1024 * 1024;

/**
 * fetch as the cloud calls a cluster: no redirect followed (the admitted URL is the only place
 * the token goes), no longer than `timeoutMs`, and the answer read up to ANSWER_MAX_BYTES.
 */
async function boundedFetch(
  input: Parameters<typeof fetch>[0],
  init: Parameters<typeof fetch>[1],
  timeoutMs: number,
): Promise<Response> {
  const res = await fetch(input, {
    ...init,
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (Number(res.headers.get('content-length') ?? 0) > ANSWER_MAX_BYTES) {
    await res.body?.cancel();
    throw new Error(`an answer longer than ${ANSWER_MAX_BYTES} bytes`);
  }
  if (!res.body) return res;
  let read = 0;
  const bounded = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        read += chunk.byteLength;
        if (read > ANSWER_MAX_BYTES) {
          out.error(new Error(`an answer longer than ${ANSWER_MAX_BYTES} bytes`));
        } else {
          out.enqueue(chunk);
        }
      },
    }),
  );
  return new Response(bounded, { status: res.status, headers: res.headers });
}

export interface VagothClusterOptions {
  name: string;
  /** The cluster's tRPC endpoint (`http://host:port/trpc`), admitted by the operator's list. */
  url: string;
  /** A cluster token (`vgt_...`) the cloud calls it with. */
  token: string;
  /** How long one call may take before the cluster is taken as not answering. */
  timeoutMs: number;
}

/** Another vagoth cluster, reached through its tRPC API over HTTP with a cluster token. */
export class VagothCluster implements ClusterDriver {
  readonly kind = 'vagoth';
  private readonly api;

  get name(): string {
    return this.options.name;
  }

  constructor(private readonly options: VagothClusterOptions) {
    const timeoutMs = options.timeoutMs;
    this.api = createTRPCClient<AppRouter>({
      links: [
        httpLink({
          url: options.url,
          headers: { authorization: `Bearer ${options.token}` },
          // Never follow a redirect: the admitted URL is the only place the token goes.
          fetch: (input, init) => boundedFetch(input, init, timeoutMs),
        }),
      ],
    });
  }

  async capacity(): Promise<ClusterCapacity> {
    const hosts = this.checked(hostsAnswer, await this.call(() => this.api.hosts.list.query()));
    return sumCapacity(hosts as ClusterHost[]);
  }

  async unplaceable(shape: ClusterPlacementInput) {
    const plan = await this.call(() => this.api.placement.explain.query(shape));
    const checked = this.checked(explainAnswer, plan);
    return checked.host === null ? whyUnplaceable(checked.rejected) : null;
  }

  async createVm(input: ClusterVmInput) {
    const made = await this.call(() => this.api.vms.create.mutate(input));
    return this.checked(createAnswer, made) as typeof made;
  }

  async getVm(name: string) {
    const vm = await this.call(() => this.api.vms.get.query({ name })).catch((err: unknown) => {
      if (err instanceof TRPCError && err.code === 'NOT_FOUND') return null;
      throw err;
    });
    return vm === null ? null : (this.checked(vmAnswer, vm) as typeof vm);
  }

  async getVms(names: readonly string[]) {
    const vms = await this.call(() => this.api.vms.list.query({ names: [...names] }));
    const checked = this.checked(vmsAnswer, vms) as typeof vms;
    if (checked.length > names.length) throw this.notItsApi();
    return checked;
  }

  async operate(name: string, verb: VmVerb) {
    const done = await this.call(() => this.api.vms[verb].mutate({ name }));
    return (this.checked(operationAnswer, done) as typeof done).operation;
  }

  async operation(ref: ClusterOperationRef) {
    const detail = await this.call(() => this.api.operations.get.query(ref));
    return this.checked(operationDetailAnswer, detail) as typeof detail;
  }

  /** The part of an answer the cloud reads, checked; anything else is not the cluster's API. */
  private checked<T>(schema: z.ZodType<T>, answer: unknown): T {
    const parsed = schema.safeParse(answer);
    if (!parsed.success) throw this.notItsApi();
    return parsed.data;
  }

  private notItsApi() {
    return new ClusterUnreachableError(
      this.options.name,
      'it answered with something other than its API',
    );
  }

  /**
   * A call the cluster did not answer (refused, timed out, not its API), or answered that the
   * cloud's token is no good, is ClusterUnreachableError; its own answers (NOT_FOUND, CONFLICT,
   * ...) pass with their code and message, as the local driver's do.
   */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code =
        err instanceof TRPCClientError
          ? (err.data as { code?: string } | undefined)?.code
          : undefined;
      if (code === undefined || !(code in TRPC_ERROR_CODES_BY_KEY)) {
        throw new ClusterUnreachableError(this.options.name, 'no answer from its API', {
          cause: err,
        });
      }
      if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
        throw new ClusterUnreachableError(this.options.name, `it refused the cloud's token`, {
          cause: err,
        });
      }
      // The cluster's own answer: its code, and its words (vagoth's), bounded and printable,
      // said as the cluster's.
      const said = (err as Error).message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
      throw new TRPCError({
        code: code as TRPC_ERROR_CODE_KEY,
        message: `cluster ${this.options.name}: ${said}`,
      });
    }
  }
}
