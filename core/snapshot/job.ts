// Background jobs as QEMU 7.2's job.c runs the snapshot jobs: a status machine whose every
// change raises JOB_STATUS_CHANGE, the verb table that decides which commands a status allows,
// progress counters, and completion (waiting → pending → concluded on success, aborting →
// concluded on failure), then job-dismiss (null). Snapshot jobs are created with
// JOB_MANUAL_DISMISS, so they finalize on their own and wait in `concluded` for job-dismiss.
// Invariant: a status changes only through jobStateTransition, along QEMU's JobSTT table.

import { assert } from '../util/index.ts';
import { qapiEventSend } from '../system/index.ts';
import { type SnapshotMachine, snapshotState } from './snapshot-state.ts';

/** @qemu qapi/job.json JobStatus, in enum order */
export const JOB_STATUSES = [
  'undefined', 'created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending', 'aborting',
  'concluded', 'null',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type JobType = 'snapshot-save' | 'snapshot-load' | 'snapshot-delete';
/** @qemu qapi/job.json JobVerb */
export type JobVerb = 'cancel' | 'pause' | 'resume' | 'set-speed' | 'complete' | 'finalize' | 'dismiss';

/** One job (plain data). @qemu include/qemu/job.h Job */
export interface Job {
  id: string;
  type: JobType;
  status: JobStatus;
  progressCurrent: number;
  progressTotal: number;
  /** The run's return value (0 or negative) once it finished. */
  ret: number;
  /** The error text of a failed job (query-jobs "error"). */
  error: string | null;
}

/** @qemu job.c JobSTT: from (rows) → to (columns), in JOB_STATUSES order. */
const JOB_STT: Record<JobStatus, readonly JobStatus[]> = {
  undefined: ['created'],
  created: ['running', 'aborting', 'null'],
  running: ['paused', 'ready', 'waiting', 'aborting'],
  paused: ['running'],
  ready: ['standby', 'waiting', 'aborting'],
  standby: ['ready'],
  waiting: ['pending', 'aborting'],
  pending: ['aborting', 'concluded'],
  aborting: ['aborting', 'concluded'],
  concluded: ['null'],
  null: [],
};

/** @qemu job.c JobVerbTable: the statuses in which each verb is allowed. */
const JOB_VERBS: Record<JobVerb, readonly JobStatus[]> = {
  cancel: ['created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending'],
  pause: ['created', 'running', 'paused', 'ready', 'standby'],
  resume: ['created', 'running', 'paused', 'ready', 'standby'],
  'set-speed': ['created', 'running', 'paused', 'ready', 'standby'],
  complete: ['ready'],
  finalize: ['pending'],
  dismiss: ['concluded'],
};

/** @qemu job.c job_state_transition: checked; JOB_STATUS_CHANGE when the status changes. */
export function jobStateTransition(m: SnapshotMachine, job: Job, to: JobStatus): void {
  const from = job.status;
  assert(JOB_STT[from].includes(to), `job '${job.id}': invalid status transition ${from} -> ${to}`);
  job.status = to;
  if (to !== from) qapiEventSend(m, 'JOB_STATUS_CHANGE', { id: job.id, status: to });
}

/** Whether `id` is well formed. @qemu util/id.c id_wellformed */
function idWellformed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(id);
}

/** @qemu job.c find_job */
export function jobFind(m: SnapshotMachine, id: string): Job | null {
  return snapshotState(m).jobs.find((j) => j.id === id) ?? null;
}

/**
 * Create a job in `created`. Returns it, or QEMU's error text.
 * @qemu job.c job_create
 */
export function jobCreate(m: SnapshotMachine, id: string, type: JobType): Job | string {
  if (!idWellformed(id)) return `Invalid job ID '${id}'`;
  if (jobFind(m, id)) return `Job ID '${id}' already in use`;
  const job: Job = { id, type, status: 'undefined', progressCurrent: 0, progressTotal: 0, ret: 0, error: null };
  // QLIST_INSERT_HEAD: the newest job comes first (query-jobs, job_cancel_sync_all).
  snapshotState(m).jobs.unshift(job);
  jobStateTransition(m, job, 'created');
  return job;
}

/** @qemu job.c job_apply_verb: null when allowed, else QEMU's error text. */
export function jobApplyVerb(job: Job, verb: JobVerb): string | null {
  if (JOB_VERBS[verb].includes(job.status)) return null;
  return `Job '${job.id}' in state '${job.status}' cannot accept command verb '${verb}'`;
}

/** @qemu job_progress_set_remaining */
export function jobProgressSetRemaining(job: Job, remaining: number): void {
  job.progressTotal = job.progressCurrent + remaining;
}

/** @qemu job_progress_update */
export function jobProgressUpdate(job: Job, done: number): void {
  job.progressCurrent += done;
}

/**
 * The job's run returned `ret` (error text when it failed): what job_exit does in the main loop.
 * Success walks waiting → pending → concluded (auto-finalize); failure aborting → concluded.
 * @qemu job.c job_exit, job_completed, job_completed_txn_success, job_finalize_single
 */
export function jobCompleted(m: SnapshotMachine, job: Job, ret: number, error: string | null): void {
  job.ret = ret;
  if (ret < 0) {
    // job_update_rc: a failure without an Error gets strerror's text.
    job.error = error ?? 'Operation not permitted';
    jobStateTransition(m, job, 'aborting');
  } else {
    jobStateTransition(m, job, 'waiting');
    jobStateTransition(m, job, 'pending');
  }
  jobStateTransition(m, job, 'concluded');
}

/** @qemu job.c job_dismiss (job-dismiss): the job goes to null and is forgotten. */
export function jobDismiss(m: SnapshotMachine, id: string): string | null {
  const job = jobFind(m, id);
  if (!job) return 'Job not found';
  const err = jobApplyVerb(job, 'dismiss');
  if (err !== null) return err;
  jobStateTransition(m, job, 'null');
  const st = snapshotState(m);
  st.jobs = st.jobs.filter((j) => j !== job);
  return null;
}

/** query-jobs: newest first. @qemu job-qmp.c qmp_query_jobs */
export function jobQueryAll(m: SnapshotMachine): readonly Job[] {
  return snapshotState(m).jobs;
}

/**
 * At exit, every job ends and is dismissed (newest first): a concluded one goes to null; one
 * still running is aborted first. @qemu job.c job_cancel_sync_all (from qemu_cleanup)
 */
export function jobCancelSyncAll(m: SnapshotMachine): void {
  const st = snapshotState(m);
  for (const job of [...st.jobs]) {
    if (job.status !== 'concluded') {
      if (job.status !== 'aborting') jobStateTransition(m, job, 'aborting');
      job.error ??= 'Operation canceled';
      job.ret = job.ret < 0 ? job.ret : -125;
      jobStateTransition(m, job, 'concluded');
    }
    jobStateTransition(m, job, 'null');
  }
  st.jobs = [];
}
