// loadvm (migration/savevm.c load_snapshot, QEMU 7.2), made atomic. QEMU reverts the disks,
// resets the machine and only then reads the VM state, so a stream that turns out bad leaves a
// half-loaded machine on reverted disks. detvm keeps QEMU's checks, order of observable effects
// and texts, but reads and fully parses the snapshot's VM state (staged, nothing applied) before
// it touches anything; reverts the disks as one unit (with more than one disk, an undo snapshot
// per disk lets a failure on a later disk put the earlier ones back); and only then resets the
// devices and applies the staged state. A load that fails changes nothing but the run state,
// which follows QEMU (loadvm stopped the VM: it stays in restore-vm).
// Invariant: the drained section is ended on every path; commit happens only after every check.

import { QEMU_CLOCK_REALTIME, qemuClockGetNs } from '../loop/index.ts';
import { qemuSystemReset } from '../system/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceSpan } from '../trace/index.ts';
import {
  type BlockDriverState, bdrvAllCanSnapshot, bdrvAllCreateSnapshot, bdrvAllDeleteSnapshot, bdrvAllFindVmstateBs,
  bdrvAllGotoSnapshot, bdrvAllHasSnapshot, bdrvDrainAllBegin, bdrvDrainAllEnd, bdrvFindNode, bdrvNextAll,
  bdrvSnapshotFind, bdrvSnapshotLoadVmstate,
} from '../block/index.ts';
import { type LoadvmState, loadvmCommit, loadvmCreate, loadvmFeed } from '../migration/index.ts';
import { type SnapshotMachine, type SnapshotResult, snapshotFail, snapshotOk } from './snapshot-state.ts';

/** Bytes read from the image per step while staging the VM state. */
export const LOADVM_CHUNK_BYTES = 1 << 20;

/** The nodes bdrv_all_goto_snapshot reverts. @qemu block/snapshot.c bdrv_all_get_snapshot_devices + includes_bs */
function snapshotNodes(m: SnapshotMachine, devices: string[] | null): BlockDriverState[] {
  if (devices !== null) return devices.map((d) => bdrvFindNode(m, d)).filter((bs) => bs !== null);
  return bdrvNextAll(m).filter((bs) => !bs.closed && !bs.readOnly && (bs.blk !== null || bs.parent === null));
}

/**
 * Read the VM state of snapshot `name` from `bs` and stage it. Returns the staged load, or the
 * failure text with the loader's error_report lines. @qemu qemu_loadvm_state (its reading part)
 */
function stageVmstate(m: SnapshotMachine, bs: BlockDriverState, name: string, size: number): LoadvmState | SnapshotResult {
  const ls = loadvmCreate(m.migration.sv);
  let phase = ls.phase;
  for (let pos = 0; pos < size && phase !== 'failed' && phase !== 'loaded';) {
    const n = Math.min(LOADVM_CHUNK_BYTES, size - pos);
    const r = bdrvSnapshotLoadVmstate(bs, name, pos, n);
    // A read error is what QEMU's QEMUFile reports as -EIO from the loader.
    if (!r.ok) return snapshotFail(`Error ${-r.errno} while loading VM state`);
    phase = loadvmFeed(ls, r.value);
    pos += n;
  }
  if (phase !== 'failed' && phase !== 'loaded') phase = loadvmFeed(ls, null);
  if (phase === 'failed') {
    const f = ls.failure!;
    return snapshotFail(`Error ${f.ret} while loading VM state`, [...ls.warnings, ...f.messages]);
  }
  return ls;
}

/**
 * Revert every included disk to `name`, all or none: with more than one disk an undo snapshot
 * of each is taken first, and if a later disk fails the earlier ones go back to it. Returns null
 * or QEMU's error text. @qemu block/snapshot.c bdrv_all_goto_snapshot
 */
function gotoSnapshotAll(m: SnapshotMachine, name: string, devices: string[] | null): string | null {
  if (snapshotNodes(m, devices).length <= 1) {
    const r = bdrvAllGotoSnapshot(m, name, devices);
    return r.ok ? null : r.error;
  }
  const undo = `detvm-loadvm-undo-${qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME)}`;
  const info = { idStr: '', name: undo, vmStateSize: 0, dateSec: 0, dateNsec: 0, vmClockNsec: 0, icount: -1 };
  const saved = bdrvAllCreateSnapshot(m, info, null, 0, devices);
  if (!saved.ok) {
    bdrvAllDeleteSnapshot(m, undo, devices);
    return saved.error;
  }
  const r = bdrvAllGotoSnapshot(m, name, devices);
  if (!r.ok) bdrvAllGotoSnapshot(m, undo, devices);
  bdrvAllDeleteSnapshot(m, undo, devices);
  return r.ok ? null : r.error;
}

/** load_snapshot's checks before anything changes; the vmstate node and the state's size. */
function loadSnapshotChecks(m: SnapshotMachine, name: string, vmstate: string | null, devices: string[] | null): { bs: BlockDriverState; size: number } | SnapshotResult {
  const can = bdrvAllCanSnapshot(m, devices);
  if (!can.ok) return snapshotFail(can.error);
  const has = bdrvAllHasSnapshot(m, name, devices);
  if (!has.ok) return snapshotFail(has.error);
  if (!has.value) return snapshotFail(`Snapshot '${name}' does not exist in one or more devices`);
  const bs = bdrvAllFindVmstateBs(m, vmstate, devices);
  if (!bs.ok) return snapshotFail(bs.error);
  const sn = bdrvSnapshotFind(bs.value, name);
  // QEMU returns false here without setting an error: nothing is printed.
  if (sn === null) return snapshotFail('');
  if (sn.vmStateSize === 0) return snapshotFail('This is a disk-only snapshot. Revert to it  offline using qemu-img');
  return { bs: bs.value, size: sn.vmStateSize };
}

/**
 * Load snapshot `name` into the machine: disks and VM state, atomically (see the file header).
 * The caller handles the run state (hmp_loadvm stops the VM before and starts it after a
 * success). @qemu migration/savevm.c load_snapshot
 */
export function loadSnapshot(m: SnapshotMachine, name: string, vmstate: string | null = null, devices: string[] | null = null): SnapshotResult {
  const opened = traceEnter(m, TRACE_CONTROL, 'load_snapshot', { name });
  const r = loadSnapshotChecked(m, name, vmstate, devices);
  traceExit(m, opened, 'load_snapshot', { ok: r.ok });
  return r;
}

function loadSnapshotChecked(m: SnapshotMachine, name: string, vmstate: string | null, devices: string[] | null): SnapshotResult {
  const checked = loadSnapshotChecks(m, name, vmstate, devices);
  if ('ok' in checked) return checked;
  bdrvDrainAllBegin(m);
  try {
    const ls = traceSpan(m, TRACE_CONTROL, 'qemu_loadvm_state', undefined, () => stageVmstate(m, checked.bs, name, checked.size));
    if ('ok' in ls) return ls;
    const err = traceSpan(m, TRACE_CONTROL, 'bdrv_all_goto_snapshot', undefined, () => gotoSnapshotAll(m, name, devices));
    if (err !== null) return snapshotFail(err);
    qemuSystemReset(m, 'snapshot-load');
    traceSpan(m, TRACE_CONTROL, 'loadvm_commit', undefined, () => {
      loadvmCommit(ls);
      m.migration.postLoad();
    });
    return snapshotOk(ls.warnings);
  } finally {
    bdrvDrainAllEnd(m);
  }
}
