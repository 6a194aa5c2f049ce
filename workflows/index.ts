export { createVm, claimedUpdate, stepQuery, type CreateVmInput } from './create-vm.ts';
export { decommissionVm, type DecommissionVmInput } from './decommission-vm.ts';
export { registerHost } from './register-host.ts';
export { monitorCluster, type MonitorInput, type MonitorReport } from './monitor.ts';
