export {
  vmEntity,
  claimedUpdate,
  startUpdate,
  stopUpdate,
  shutdownUpdate,
  rebootUpdate,
  migrateUpdate,
  reprovisionUpdate,
  decommissionUpdate,
  statusQuery,
  operationQuery,
  type OperationRecord,
  type VmEntityInput,
  type VmStatus,
} from './vm-entity.ts';
export type { OperationOutcome } from './vm-operations.ts';
export type { MigrateRequest, OperationKind, ShutdownArgs } from './vm-rules.ts';
export { registerHost } from './register-host.ts';
export { monitorCluster, type MonitorInput, type MonitorReport } from './monitor.ts';
