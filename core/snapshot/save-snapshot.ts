// savevm and delvm (migration/savevm.c save_snapshot and delete_snapshot, QEMU 7.2): the checks
// in QEMU's order with its texts, the run-state dance (globalstate stored, running → save-vm →
// running with STOP/RESUME), the drained section, the snapshot info (host wall clock, VIRTUAL
// clock, auto name vm-%Y%m%d%H%M%S in the host's local time), the VM state streamed into the
// vmstate area of the first snapshot-capable disk, and the internal snapshot on every disk.
// Invariant: every path out of the drained section ends it, and a VM that ran runs again.

import { hostWallClock, QEMU_CLOCK_VIRTUAL, qemuClockGetNs } from '../loop/index.ts';
import { runstateGet, runstateIsRunning, vmStart, vmStop } from '../system/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceSpan } from '../trace/index.ts';
import {
  type BlockDriverState, type QEMUSnapshotInfo, bdrvAllCanSnapshot, bdrvAllCreateSnapshot, bdrvAllDeleteSnapshot,
  bdrvAllFindVmstateBs, bdrvAllHasSnapshot, bdrvDrainAllBegin, bdrvDrainAllEnd, bdrvFlush, bdrvSaveVmstate, formatDateTime,
} from '../block/index.ts';
import {
  type MigrationFailure, globalStateStore, qemuFclose, qemuFileWriterCreate, qemuSavevmState,
  qemuSavevmStateBlocked, EINVAL,
} from '../migration/index.ts';
import {
  type SnapshotMachine, type SnapshotResult, snapshotFail, snapshotOk, snapshotState,
} from './snapshot-state.ts';

/** Bytes the vmstate writer gathers before handing them to the disk. */
export const SAVEVM_CHUNK_BYTES = 1 << 20;

/** "vm-%Y%m%d%H%M%S" of `sec` in local time. @qemu g_date_time_format(now, "vm-%Y%m%d%H%M%S") */
export function snapshotAutoName(sec: number, utcOffsetSec: number): string {
  return `vm-${formatDateTime(sec, utcOffsetSec).replace(/[-: ]/g, '')}`;
}

/** Migration states in which QEMU refuses to save (migration_is_running). */
const RUNNING = new Set([
  'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'setup', 'pre-switchover', 'device',
  'wait-unplug', 'cancelling',
]);

/**
 * Stream the VM state into `bs`'s vmstate area; returns the size written, or the failure with
 * QEMU's messages (the Error text last). @qemu qemu_fopen_bdrv + qemu_savevm_state + qemu_fclose
 */
function saveVmstateToBdrv(m: SnapshotMachine, bs: BlockDriverState): { size: number } | MigrationFailure {
  const ms = m.migration;
  const hooks = snapshotState(m).migrationHooks;
  const busy = hooks ? hooks.begin() : ms.out !== null && RUNNING.has(ms.out.status)
    ? "There's a migration process in progress" : null;
  if (busy !== null) return { ret: -EINVAL, messages: [busy] };
  let pos = 0;
  const f = qemuFileWriterCreate((bytes) => {
    const r = bdrvSaveVmstate(bs, pos, bytes);
    if (!r.ok) return -r.errno;
    pos += bytes.length;
    return 0;
  }, SAVEVM_CHUNK_BYTES);
  const failure = traceSpan(m, TRACE_CONTROL, 'qemu_savevm_state', undefined, () => qemuSavevmState(ms.sv, f));
  hooks?.end(failure === null);
  const size = f.transferred;
  const ret2 = qemuFclose(f);
  if (failure) return failure;
  // bdrv_fclose flushes the node; QEMU fails here without an Error (nothing is printed).
  const flushed = ret2 < 0 ? ret2 : bdrvFlush(bs);
  if (flushed < 0) return { ret: flushed, messages: [] };
  return { size };
}

/** What save_snapshot may fail with before it stops the VM. */
function saveSnapshotChecks(m: SnapshotMachine, name: string | null, overwrite: boolean, vmstate: string | null, devices: string[] | null): BlockDriverState | string {
  const blocked = qemuSavevmStateBlocked(m.migration.sv);
  if (blocked !== null) return blocked;
  const can = bdrvAllCanSnapshot(m, devices);
  if (!can.ok) return can.error;
  if (name !== null) {
    if (overwrite) {
      const del = bdrvAllDeleteSnapshot(m, name, devices);
      if (!del.ok) return del.error;
    } else {
      const has = bdrvAllHasSnapshot(m, name, devices);
      if (!has.ok) return has.error;
      if (has.value) return `Snapshot '${name}' already exists in one or more devices`;
    }
  }
  const bs = bdrvAllFindVmstateBs(m, vmstate, devices);
  return bs.ok ? bs.value : bs.error;
}

/**
 * Save snapshot `name` (null: an automatic name) of the whole VM: disks and VM state. With
 * `overwrite` (HMP savevm) an existing snapshot of that name is deleted first; without it
 * (QMP snapshot-save) it is an error. `vmstate` names the node for the VM state and `devices`
 * the nodes to snapshot (null: the defaults). @qemu migration/savevm.c save_snapshot
 */
export function saveSnapshot(
  m: SnapshotMachine, name: string | null, overwrite: boolean, vmstate: string | null = null, devices: string[] | null = null,
): SnapshotResult {
  const opened = traceEnter(m, TRACE_CONTROL, 'save_snapshot', { name: name ?? '' });
  const now = hostWallClock(m.clocks);
  const r = saveSnapshotChecked(m, name, overwrite, vmstate, devices, now);
  traceExit(m, opened, 'save_snapshot', { ok: r.ok });
  return r;
}

function saveSnapshotChecked(
  m: SnapshotMachine, name: string | null, overwrite: boolean, vmstate: string | null, devices: string[] | null,
  now: { seconds: number; microseconds: number },
): SnapshotResult {
  const bs = saveSnapshotChecks(m, name, overwrite, vmstate, devices);
  if (typeof bs === 'string') return snapshotFail(bs);
  const savedVmRunning = runstateIsRunning(m);
  traceSpan(m, TRACE_CONTROL, 'global_state_store', undefined, () => globalStateStore(m.migration.gs, runstateGet(m)));
  vmStop(m, 'save-vm');
  bdrvDrainAllBegin(m);
  const sn: QEMUSnapshotInfo = {
    idStr: '', name: name ?? snapshotAutoName(now.seconds, snapshotState(m).utcOffsetSec), vmStateSize: 0,
    dateSec: now.seconds, dateNsec: now.microseconds * 1000,
    vmClockNsec: qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL), icount: -1,
  };
  let result: SnapshotResult;
  const saved = saveVmstateToBdrv(m, bs);
  if ('ret' in saved) {
    const msgs = saved.messages;
    result = snapshotFail(msgs.length > 0 ? msgs[msgs.length - 1]! : '', msgs.slice(0, -1));
  } else {
    const created = traceSpan(m, TRACE_CONTROL, 'bdrv_all_create_snapshot', undefined,
      () => bdrvAllCreateSnapshot(m, sn, bs, saved.size, devices));
    if (created.ok) {
      result = snapshotOk();
    } else {
      bdrvAllDeleteSnapshot(m, sn.name, devices);
      result = snapshotFail(created.error);
    }
  }
  bdrvDrainAllEnd(m);
  if (savedVmRunning) vmStart(m);
  return result;
}

/**
 * Delete snapshot `name` from every disk (a disk without it is skipped silently).
 * @qemu migration/savevm.c delete_snapshot
 */
export function deleteSnapshot(m: SnapshotMachine, name: string, devices: string[] | null = null): SnapshotResult {
  return traceSpan(m, TRACE_CONTROL, 'delete_snapshot', { name }, () => {
    const can = bdrvAllCanSnapshot(m, devices);
    if (!can.ok) return snapshotFail(can.error);
    const del = bdrvAllDeleteSnapshot(m, name, devices);
    return del.ok ? snapshotOk() : snapshotFail(del.error);
  });
}
