import type { WipeRecord } from '../drivers/driver.ts';
import type { ActorOptions } from './context.ts';
import type { Queryable } from './db.ts';
import { NotFoundError } from './errors.ts';

/** Why a volume was wiped: the step that did it (migrations/012_volume_wipes.sql). */
export type WipeReason = 'deprovision' | 'moved-away' | 'failed-move' | 'rebuild';

/** One volume's wipe as vms.wipes answers it. */
export interface VolumeWipe {
  vmId: string;
  vmName: string;
  host: string;
  pool: string;
  volume: string;
  reason: WipeReason;
  /** The VM's operation under way when it was wiped: `decommission`, `reprovision`, ... */
  vmOperation: string | null;
  method: WipeRecord['method'];
  sizeBytes: number | null;
  bytesWritten: number | null;
  resumedFrom: number;
  durationMs: number;
  /** The read-back; null where there were no bytes vagoth could read (`agent`, `none`). */
  check: { blocks: number; bytesRead: number; zero: boolean; nonZeroAt: number | null } | null;
  at: string;
  /** `<workflowId>/<runId>` of the step that wiped it. */
  operation: string | null;
}

/** Records how `record.volume` of the VM was wiped on `host`, before the volume is deleted. */
export async function recordWipe(
  sql: Queryable,
  vm: { id: string; name: string; operation: { kind: string } | null },
  host: string,
  reason: WipeReason,
  record: WipeRecord,
  actor: ActorOptions,
): Promise<void> {
  const { check } = record;
  await sql`
    INSERT INTO volume_wipes (vm_id, vm_name, host, pool, volume, reason, vm_operation, method, size_bytes,
      bytes_written, resumed_from, duration_ms, check_blocks, check_bytes, nonzero_at, actor,
      operation)
    VALUES (${vm.id}, ${vm.name}, ${host}, ${record.volume.pool}, ${record.volume.name},
      ${reason}, ${vm.operation?.kind ?? null}, ${record.method}, ${record.sizeBytes}, ${record.bytesWritten},
      ${record.resumedFrom}, ${record.ms}, ${check?.blocks ?? null}, ${check?.bytesRead ?? null},
      ${check?.nonZeroAt ?? null}, ${actor.actor}, ${actor.operation})`;
}

interface WipeRow {
  vm_id: string;
  vm_name: string;
  host: string;
  pool: string;
  volume: string;
  reason: WipeReason;
  vm_operation: string | null;
  method: WipeRecord['method'];
  size_bytes: string | null;
  bytes_written: string | null;
  resumed_from: string;
  duration_ms: string;
  check_blocks: number | null;
  check_bytes: string | null;
  nonzero_at: string | null;
  at: Date;
  operation: string | null;
}

const count = (v: string | null) => (v === null ? null : Number(v));

function toWipe(r: WipeRow): VolumeWipe {
  return {
    vmId: r.vm_id,
    vmName: r.vm_name,
    host: r.host,
    pool: r.pool,
    volume: r.volume,
    reason: r.reason,
    vmOperation: r.vm_operation,
    method: r.method,
    sizeBytes: count(r.size_bytes),
    bytesWritten: count(r.bytes_written),
    resumedFrom: Number(r.resumed_from),
    durationMs: Number(r.duration_ms),
    check:
      r.check_blocks === null
        ? null
        : {
            blocks: r.check_blocks,
            bytesRead: Number(r.check_bytes),
            zero: r.nonzero_at === null,
            nonZeroAt: count(r.nonzero_at),
          },
    at: r.at.toISOString(),
    operation: r.operation,
  };
}

/**
 * The wipes of one VM, oldest first, found by its id or by its name: the VM of that name now,
 * else the last one of that name whose volumes were wiped (a decommissioned VM is found by
 * the name it had). NotFound when neither a VM nor a record answers to it.
 */
export async function wipesOf(
  sql: Queryable,
  which: { id: string } | { name: string },
): Promise<VolumeWipe[]> {
  const vmId = 'id' in which ? which.id : await vmIdByName(sql, which.name);
  const rows = await sql<WipeRow[]>`
    SELECT vm_id, vm_name, host, pool, volume, reason, vm_operation, method, size_bytes, bytes_written,
      resumed_from, duration_ms, check_blocks, check_bytes, nonzero_at, at, operation
    FROM volume_wipes WHERE vm_id = ${vmId} ORDER BY id`;
  if (rows.length === 0 && 'id' in which) {
    const [live] = await sql`SELECT 1 FROM nodes WHERE type = 'vm' AND id = ${which.id}`;
    if (!live) throw new NotFoundError('vm', which.id);
  }
  return rows.map(toWipe);
}

async function vmIdByName(sql: Queryable, name: string): Promise<string> {
  const [live] = await sql<{ id: string }[]>`
    SELECT id FROM nodes WHERE type = 'vm' AND name = ${name}`;
  if (live) return live.id;
  const [last] = await sql<{ vm_id: string }[]>`
    SELECT vm_id FROM volume_wipes WHERE vm_name = ${name} ORDER BY id DESC LIMIT 1`;
  if (!last) throw new NotFoundError('vm', name);
  return last.vm_id;
}
