import type { Client } from '@temporalio/client';
import type { DomainInfo } from '../../drivers/driver.ts';
import type { Sql } from '../../registry/db.ts';

/** What the registry, the hosts and Temporal say at one moment, for findViolations. */
export interface ClusterSnapshot {
  vms: Array<{ id: string; name: string; state: string; host: string | null }>;
  /** Every claimed key with its holder's id, and whether that holder still exists. */
  keys: Array<{ key: string; holderId: string; holderExists: boolean }>;
  /** Capacity claims: the VM, whether it exists, and the host it is charged to. */
  allocations: Array<{ vmId: string; vmExists: boolean; host: string }>;
  /** Domains each host reports, by host name. */
  domains: Map<string, DomainInfo[]>;
  /** Ids of the workflows still running on the cluster's task queue. */
  openWorkflows: string[];
}

export interface CheckOptions {
  /**
   * Open workflows allowed to remain: an entity workflow lives as long as its VM. Everything
   * else still running once the test has waited for its operations is stuck.
   */
  mayStayOpen?: (workflowId: string, vmNames: Set<string>) => boolean;
}

/** A long-lived entity workflow `vm:<name>` of a VM that exists may stay open; nothing else. */
export const entityWorkflowsOnly: CheckOptions['mayStayOpen'] = (id, names) =>
  id.startsWith('vm:') && names.has(id.slice(3));

/**
 * Every way a settled cluster can be wrong, as sentences (empty: all is well). A VM is either
 * running on exactly the host the registry records, or failed with no domain anywhere; no key
 * is held twice or by something gone; no host runs a vagoth domain the registry does not know.
 * Foreign domains (no vagoth metadata) are not vagoth's concern here.
 */
export function findViolations(s: ClusterSnapshot, options: CheckOptions = {}): string[] {
  const out: string[] = [];
  const byId = new Map(s.vms.map((vm) => [vm.id, vm]));
  const placements = new Map<string, string[]>(); // vm id -> hosts holding a domain of it
  for (const [host, domains] of s.domains) {
    for (const d of domains) {
      if (d.vagothId === null) continue;
      placements.set(d.vagothId, [...(placements.get(d.vagothId) ?? []), host]);
      const vm = byId.get(d.vagothId);
      if (!vm) out.push(`domain ${d.name} on ${host} belongs to no VM in the registry`);
      else if (vm.host !== host)
        out.push(`domain ${d.name} is on ${host}, the registry says ${vm.host ?? 'nowhere'}`);
    }
  }
  for (const vm of s.vms) {
    const hosts = placements.get(vm.id) ?? [];
    if (vm.state === 'running') {
      if (hosts.length !== 1) out.push(`vm ${vm.name} is running on ${hosts.length} hosts`);
      const domain = vm.host ? s.domains.get(vm.host)?.find((d) => d.vagothId === vm.id) : null;
      if (domain && domain.state !== 'running')
        out.push(`vm ${vm.name} is running in the registry, ${domain.state} on ${vm.host}`);
    } else if (vm.state === 'failed') {
      if (hosts.length > 0)
        out.push(`failed vm ${vm.name} still has a domain on ${hosts.join(', ')}`);
    } else {
      out.push(`vm ${vm.name} is stuck in ${vm.state}`);
    }
  }
  const holders = new Map<string, number>();
  for (const k of s.keys) {
    holders.set(k.key, (holders.get(k.key) ?? 0) + 1);
    if (!k.holderExists) out.push(`key ${k.key} is held by removed node ${k.holderId}`);
  }
  for (const [key, n] of holders) if (n > 1) out.push(`key ${key} is held ${n} times`);
  for (const a of s.allocations) {
    if (!a.vmExists) out.push(`capacity on ${a.host} is charged to removed VM ${a.vmId}`);
  }
  const names = new Set(s.vms.map((vm) => vm.name));
  const mayStay = options.mayStayOpen ?? (() => false);
  for (const id of s.openWorkflows)
    if (!mayStay(id, names)) out.push(`workflow ${id} is still running`);
  return out;
}

export interface SnapshotSources {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  /** The hosts' own reports (Cluster.statuses), not the registry's idea of them. */
  statuses(): Promise<Map<string, { domains: DomainInfo[] }>>;
}

export async function takeSnapshot(src: SnapshotSources): Promise<ClusterSnapshot> {
  const { sql } = src;
  const vms = await sql<ClusterSnapshot['vms']>`
    SELECT v.id, v.name, v.metadata->>'state' AS state, h.name AS host
    FROM nodes v LEFT JOIN nodes h ON h.id = v.parent_id WHERE v.type = 'vm'`;
  // LEFT JOINs: the schema's cascades should make a missing holder impossible; check anyway.
  const keys = await sql<ClusterSnapshot['keys']>`
    SELECT k.key, k.node_id AS "holderId", n.id IS NOT NULL AS "holderExists"
    FROM node_keys k LEFT JOIN nodes n ON n.id = k.node_id`;
  const allocations = await sql<ClusterSnapshot['allocations']>`
    SELECT a.vm_id AS "vmId", v.id IS NOT NULL AS "vmExists", h.name AS host
    FROM allocations a LEFT JOIN nodes v ON v.id = a.vm_id JOIN nodes h ON h.id = a.host_id`;
  const statuses = await src.statuses();
  const domains = new Map([...statuses].map(([host, st]) => [host, st.domains]));
  const openWorkflows: string[] = [];
  const query = `ExecutionStatus = "Running" AND TaskQueue = "${src.taskQueue}"`;
  for await (const wf of src.temporal.workflow.list({ query })) {
    // Visibility lags the workflow's own state (seen under load: a run that had closed, listed
    // as running): the run itself has the last word.
    const { status } = await src.temporal.workflow.getHandle(wf.workflowId, wf.runId).describe();
    if (status.name === 'RUNNING') openWorkflows.push(wf.workflowId);
  }
  return { vms: [...vms], keys: [...keys], allocations: [...allocations], domains, openWorkflows };
}
