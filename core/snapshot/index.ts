// Public API of core/snapshot: savevm, loadvm and delvm over the block layer's internal
// snapshots and the migration stream (migration/savevm.c save_snapshot, load_snapshot,
// delete_snapshot), the QMP snapshot jobs with job.c's status machine, and `info snapshots`.

export * from './snapshot-state.ts';
export * from './job.ts';
export { saveSnapshot, deleteSnapshot, snapshotAutoName, SAVEVM_CHUNK_BYTES } from './save-snapshot.ts';
export { loadSnapshot, LOADVM_CHUNK_BYTES } from './load-snapshot.ts';
export { qmpSnapshotSave, qmpSnapshotLoad, qmpSnapshotDelete } from './snapshot-jobs.ts';
export { snapshotCompletionTags } from './snapshot-tags.ts';
