import type { CloudDeps } from './api/context.ts';
import { clusterDriver } from './clusters/index.ts';
import { ClusterUnreachableError } from './errors.ts';
import { TRPCError } from '@trpc/server';
import { vmWorkflowId } from '../common/vocabulary.ts';
import type { ClusterDriver } from './clusters/driver.ts';
import { neverMade, reconcilePlan } from './reconcile.ts';
import { listClusters } from './store/clusters.ts';
import { acceptInstance, instancesOnCluster, releaseInstance } from './store/instances.ts';

// One cloud process at a time walks the clusters (any other skips its turn).
const LOCK_ID = 0x7a90_7503;
const PAGE = 500;
/** How long an instance whose create its cluster never took may wait for its VM. */
export const UNACCEPTED_GRACE_MS = 10 * 60_000;

export interface ReconcileReport {
  /** Instances whose share of the quota went back, each with why. */
  released: Array<{ project: string; name: string; reason: string }>;
  /** Clusters that did not answer: their instances were left as they are. */
  silent: string[];
}

/**
 * Walks every cluster's live instances a page at a time, asks the cluster which of their VMs
 * it has (one call a page), and gives back the share of those it has lost (cloud/reconcile.ts
 * decides which). A cluster that does not answer loses nothing.
 */
export async function reconcileOnce(
  deps: CloudDeps,
  now = () => new Date(),
): Promise<ReconcileReport | null> {
  // A lock of the session, on a connection of its own: no transaction stays open while the
  // clusters are asked.
  const lockHolder = await deps.sql.reserve();
  try {
    const [lock] = await lockHolder<{ ok: boolean }[]>`
      SELECT pg_try_advisory_lock(${LOCK_ID}) AS ok`;
    if (!lock?.ok) return null;
    try {
      return await walk(deps, now);
    } finally {
      await lockHolder`SELECT pg_advisory_unlock(${LOCK_ID})`;
    }
  } finally {
    lockHolder.release();
  }
}

async function walk(deps: CloudDeps, now: () => Date): Promise<ReconcileReport> {
  const report: ReconcileReport = { released: [], silent: [] };
  for (const cluster of await listClusters(deps.sql)) {
    let driver;
    try {
      driver = clusterDriver(deps, cluster);
    } catch {
      report.silent.push(cluster.name);
      continue;
    }
    for (let after: string | undefined; ;) {
      const page = await instancesOnCluster(deps.sql, cluster.id, {
        limit: PAGE,
        ...(after === undefined ? {} : { after }),
      });
      if (page.length === 0) break;
      after = page.at(-1)!.vmName;
      let vms;
      try {
        vms = await driver.getVms(page.map((i) => i.vmName));
      } catch (err) {
        if (!(err instanceof ClusterUnreachableError)) throw err;
        report.silent.push(cluster.name);
        break;
      }
      const have = new Set(vms.map((v) => v.name));
      const plan = reconcilePlan(page, have, now(), UNACCEPTED_GRACE_MS);
      for (const instance of plan.adopt) await acceptInstance(deps.sql, instance.id);
      const lost = [...plan.lost];
      for (const instance of plan.unsure) {
        if (!(await stillMaking(driver, instance.vmName))) {
          lost.push({ instance, reason: neverMade(instance.vmName) });
        }
      }
      for (const { instance, reason } of lost) {
        const actor = { userId: null, tokenId: null };
        if (
          await releaseInstance(deps.sql, actor, instance, instance.projectId, 'lost', { reason })
        ) {
          report.released.push({ project: instance.project, name: instance.name, reason });
        }
      }
      if (page.length < PAGE) break;
    }
  }
  return report;
}

/**
 * Whether the cluster may still make the VM: its workflow is running (its workers may be
 * behind), or the cluster does not answer. Only a cluster that has no such workflow, or one
 * that ended, says it will not.
 */
async function stillMaking(driver: ClusterDriver, vmName: string): Promise<boolean> {
  try {
    const op = await driver.operation({ id: vmWorkflowId(vmName) });
    return op.status === 'running' || op.status === 'queued';
  } catch (err) {
    if (err instanceof TRPCError && err.code === 'NOT_FOUND') return false;
    return true;
  }
}

/** Runs reconcileOnce every `intervalMs` until stopped; a failed round is logged, not fatal. */
export function startReconciler(deps: CloudDeps, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let round: Promise<void> | null = null;
  const timer = setInterval(() => {
    // A round that outlasts the interval is not stacked on: the next tick after it runs.
    if (stopped || round) return;
    round = reconcileOnce(deps)
      .then(
        (report) => {
          for (const r of report?.released ?? []) {
            console.log(`cloud: ${r.project}/${r.name} released: ${r.reason}`);
          }
        },
        (err: unknown) => console.error('cloud reconcile:', err),
      )
      .finally(() => {
        round = null;
      });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await round;
    },
  };
}
