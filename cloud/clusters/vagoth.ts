import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../../api/router.ts';
import { ClusterUnreachableError } from '../errors.ts';
import { sumCapacity, type ClusterCapacity, type ClusterDriver } from './driver.ts';

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

  constructor(private readonly options: VagothClusterOptions) {
    const timeoutMs = options.timeoutMs;
    this.api = createTRPCClient<AppRouter>({
      links: [
        httpLink({
          url: options.url,
          headers: { authorization: `Bearer ${options.token}` },
          // Never follow a redirect: the admitted URL is the only place the token goes.
          fetch: (input, init) =>
            fetch(input, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) }),
        }),
      ],
    });
  }

  async capacity(): Promise<ClusterCapacity> {
    return sumCapacity(await this.call(() => this.api.hosts.list.query()));
  }

  /**
   * A call the cluster did not answer (refused, timed out, not its API), or answered that the
   * cloud's token is no good, is ClusterUnreachableError; its own answers (NOT_FOUND, CONFLICT,
   * ...) pass as they are. What the far side said is not passed on beyond its code.
   */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code =
        err instanceof TRPCClientError
          ? (err.data as { code?: string } | undefined)?.code
          : undefined;
      if (code === undefined) {
        throw new ClusterUnreachableError(this.options.name, 'no answer from its API', {
          cause: err,
        });
      }
      if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
        throw new ClusterUnreachableError(this.options.name, `it refused the cloud's token`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}
