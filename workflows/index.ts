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
  retryUpdate,
  statusQuery,
  operationQuery,
  type OperationRecord,
  type VmEntityInput,
  type VmStatus,
} from './vm-entity.ts';
export type {
  EvacuateRequest,
  MigrateRequest,
  OperationKind,
  OperationOutcome,
  ShutdownArgs,
} from '../common/messages.ts';
export { registerHost } from './register-host.ts';
export { monitorCluster, type MonitorInput, type MonitorReport } from './monitor.ts';
export {
  hostEntity,
  hostMaintenanceUpdate,
  hostActivateUpdate,
  hostEvacuateUpdate,
  hostOperationsQuery,
  type HostOperationsStatus,
} from './host-entity.ts';
export type { DrainReport } from './host-maintenance.ts';
export type { EvacuationReport } from './host-evacuate.ts';
export { importImage, deleteImage } from './image-import.ts';
