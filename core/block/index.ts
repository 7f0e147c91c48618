export * from './errno.ts';
export * from './block-file.ts';
export * from './block.ts';
export * from './block-backend.ts';
export * from './block-driver.ts';
export * from './io.ts';
export * from './drive.ts';
export * from './qapi.ts';
export * from './snapshot.ts';
export { qcow2Create } from './qcow2-create.ts';
export type { Qcow2CreateOptions } from './qcow2-create.ts';
export { qcow2Open, qcow2Close, qcow2SaveVmstate, qcow2LoadVmstate, qcow2SpecificInfo } from './qcow2.ts';
export type { Qcow2OpenOptions } from './qcow2.ts';
export { qcow2Pread, qcow2PreadL1, qcow2Pwrite, qcow2GrowL1Table, qcow2FlushVmstate } from './qcow2-cluster.ts';
export { qcow2ZeroClusters } from './qcow2-zero.ts';
export type { Qcow2ZeroMode } from './qcow2-zero.ts';
export { qcow2Check, qcow2CheckReportText, qcow2MarkClean } from './qcow2-check.ts';
export type { Qcow2CheckResult, Qcow2CheckFix } from './qcow2-check.ts';
export {
  qcow2SnapshotCreate, qcow2SnapshotGoto, qcow2SnapshotDelete, qcow2SnapshotList, qcow2FindSnapshot,
  qcow2FindSnapshotByIdOrName, qcow2SnapshotLoadVmstate,
} from './qcow2-snapshot.ts';
export type { Qcow2State, Qcow2Snapshot } from './qcow2-state.ts';
export { qcow2VmStateOffset, qcow2GetRefcount } from './qcow2-state.ts';
