// The QMP snapshot jobs (migration/savevm.c snapshot_save_job / snapshot_load_job /
// snapshot_delete_job, QEMU 7.2). The command creates the job and starts it (created, running);
// the job's coroutine schedules a bottom half that does the work in the main loop
// (save_snapshot; vm_stop + load_snapshot + vm_start; delete_snapshot), is re-entered from the
// next poll (aio_co_schedule) and returns, and job_exit, one more bottom half later, completes
// the job (waiting, pending, concluded; or aborting, concluded). So the command's return comes
// before STOP/RESUME, and those before the job's later statuses, as on QEMU's wire.

import { aioBhScheduleOneshot } from '../loop/index.ts';
import { runstateIsRunning, vmStart, vmStop } from '../system/index.ts';
import {
  type Job, type JobType, jobCompleted, jobCreate, jobProgressSetRemaining, jobProgressUpdate, jobStateTransition,
} from './job.ts';
import { deleteSnapshot, saveSnapshot } from './save-snapshot.ts';
import { loadSnapshot } from './load-snapshot.ts';
import type { SnapshotMachine, SnapshotResult } from './snapshot-state.ts';

/** What a snapshot job does in its bottom half. */
type SnapshotWork = (m: SnapshotMachine) => SnapshotResult;

/** The job's run after the bottom half: the coroutine returns, job_exit is scheduled. @qemu job_co_entry */
function snapshotJobReturn(m: SnapshotMachine, job: Job, r: SnapshotResult): void {
  aioBhScheduleOneshot(m.loop.aio, 'job_exit', () => {
    jobCompleted(m, job, r.ok ? 0 : -1, r.ok || r.error === '' ? null : r.error);
  });
}

/** @qemu snapshot_*_job_bh: the work, then aio_co_schedule back into the job's coroutine. */
function snapshotJobBh(m: SnapshotMachine, job: Job, work: SnapshotWork): void {
  jobProgressSetRemaining(job, 1);
  const r = work(m);
  // error_report from a bottom half has no current monitor: it goes to stderr.
  for (const line of r.reports) m.sys.report(line);
  jobProgressUpdate(job, 1);
  aioBhScheduleOneshot(m.loop.aio, 'co_schedule_bh_cb', () => snapshotJobReturn(m, job, r));
}

/** Create and start a snapshot job. Returns null, or QEMU's error text. @qemu job_create + job_start */
function snapshotJobStart(m: SnapshotMachine, id: string, type: JobType, bhName: string, work: SnapshotWork): string | null {
  const job = jobCreate(m, id, type);
  if (typeof job === 'string') return job;
  jobStateTransition(m, job, 'running');
  aioBhScheduleOneshot(m.loop.aio, bhName, () => snapshotJobBh(m, job, work));
  return null;
}

/** @qemu migration/savevm.c qmp_snapshot_save */
export function qmpSnapshotSave(m: SnapshotMachine, jobId: string, tag: string, vmstate: string, devices: string[]): string | null {
  return snapshotJobStart(m, jobId, 'snapshot-save', 'snapshot_save_job_bh',
    (mm) => saveSnapshot(mm, tag, false, vmstate, devices));
}

/** @qemu migration/savevm.c qmp_snapshot_load */
export function qmpSnapshotLoad(m: SnapshotMachine, jobId: string, tag: string, vmstate: string, devices: string[]): string | null {
  return snapshotJobStart(m, jobId, 'snapshot-load', 'snapshot_load_job_bh', (mm) => {
    const origVmRunning = runstateIsRunning(mm);
    vmStop(mm, 'restore-vm');
    const r = loadSnapshot(mm, tag, vmstate, devices);
    if (r.ok && origVmRunning) vmStart(mm);
    return r;
  });
}

/** @qemu migration/savevm.c qmp_snapshot_delete */
export function qmpSnapshotDelete(m: SnapshotMachine, jobId: string, tag: string, devices: string[]): string | null {
  return snapshotJobStart(m, jobId, 'snapshot-delete', 'snapshot_delete_job_bh',
    (mm) => deleteSnapshot(mm, tag, devices));
}
