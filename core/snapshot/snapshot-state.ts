// What the snapshot layer needs from a machine, and its own per-machine state: the machine's
// savevm registry and globalstate (owned by the migration layer), the host's UTC offset for
// snapshot names and dates, and the jobs of QMP snapshot-save/-load/-delete.
// Invariant: job ids are unique among the jobs not yet dismissed.

import type { SystemMachine } from '../system/index.ts';
import type { GlobalState, SaveVMState } from '../migration/index.ts';
import type { Job } from './job.ts';

/**
 * The migration state savevm and loadvm share with live migration: the registry (devices, RAM,
 * timers, globalstate), the post-load hook, and the outgoing migration's status (savevm refuses
 * while one runs). A MigrationMachine satisfies this structurally.
 */
export interface SnapshotMigrationView {
  sv: SaveVMState;
  gs: GlobalState;
  /** Re-derive what the sections do not carry, after a load was committed. */
  postLoad: () => void;
  out: { status: string } | null;
}

/** Snapshot-layer state of one machine (runtime, not VM state). */
export interface SnapshotState {
  /** Seconds east of UTC of the host's local time (snapshot names, `info snapshots` dates). */
  utcOffsetSec: number;
  /** @qemu job.c jobs: every job not yet dismissed, newest first. */
  jobs: Job[];
  /** Called around savevm's stream so `info migrate` shows it (the migration layer may set them). */
  migrationHooks: {
    /** migrate_init: setup. Returns QEMU's error text when a migration is running, or null. */
    begin: () => string | null;
    /** The stream's end: completed or failed. */
    end: (ok: boolean) => void;
  } | null;
}

/** A machine savevm and loadvm can work on. */
export interface SnapshotMachine extends SystemMachine {
  migration: SnapshotMigrationView;
  snapshot?: SnapshotState;
}

/** The snapshot state of `m`, created on first use (UTC, no jobs). */
export function snapshotState(m: SnapshotMachine): SnapshotState {
  m.snapshot ??= { utcOffsetSec: 0, jobs: [], migrationHooks: null };
  return m.snapshot;
}

/** Set the host's local-time offset (seconds east of UTC); the composition root does this. */
export function snapshotSetUtcOffset(m: SnapshotMachine, utcOffsetSec: number): void {
  if (!Number.isSafeInteger(utcOffsetSec) || Math.abs(utcOffsetSec) > 26 * 3600) {
    throw new RangeError(`UTC offset ${utcOffsetSec} s is not a whole number of seconds within ±26 h`);
  }
  snapshotState(m).utcOffsetSec = utcOffsetSec;
}

/** The result of save_snapshot, load_snapshot and delete_snapshot. */
export type SnapshotResult =
  | { ok: true; reports: string[] }
  /** `error` is QEMU's Error text ('' when QEMU fails without one); `reports` are error_report lines printed first. */
  | { ok: false; error: string; reports: string[] };

export function snapshotOk(reports: string[] = []): SnapshotResult {
  return { ok: true, reports };
}

export function snapshotFail(error: string, reports: string[] = []): SnapshotResult {
  return { ok: false, error, reports };
}
