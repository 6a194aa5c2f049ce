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
  evacuateUpdate,
  statusQuery,
  operationQuery,
  type OperationRecord,
  type VmEntityInput,
  type VmStatus,
} from './vm-entity.ts';
export type { OperationOutcome } from './vm-operations.ts';
export type { EvacuateRequest, MigrateRequest, OperationKind, ShutdownArgs } from './vm-rules.ts';
export { registerHost } from './register-host.ts';
export { monitorCluster, type MonitorInput, type MonitorReport } from './monitor.ts';
export { hostMaintenance, type DrainReport } from './host-maintenance.ts';
export { hostEvacuate, type EvacuationReport } from './host-evacuate.ts';
