// qcow2 internal snapshots (block/qcow2-snapshot.c): create, goto, delete, list. Each operation
// is one transaction (qcow2-commit.ts) that switches the active L1 table, the snapshot table and
// the refcounts together with one header write, so a process killed at any moment leaves either
// the old image or the new one, never a mix, and every earlier snapshot stays intact.
// Differences from QEMU's in-place updates, same on-disk result class: create hands the current
// active L1 table to the snapshot and gives the image a new active L1 (QEMU copies the other way);
// active L2 tables whose COPIED flags must change are copied rather than rewritten in place.
// Refcounts count L1→L2→cluster paths: a data cluster reachable through k L1 tables has refcount k.

import { EFBIG, EINVAL, ENOENT, ENOTSUP, blockFail } from './errno.ts';
import { QCOW_MAX_L1_SIZE, QCOW_MAX_SNAPSHOTS, getU32 } from './qcow2-format.ts';
import { type Qcow2Tx, qcow2TxBegin, qcow2TxCommit, txAlloc, txNewRefcount, txRef, txRefRange, txWrite } from './qcow2-commit.ts';
import {
  type Qcow2Snapshot, type Qcow2State, compressedRange, entryOffset, entryPut, entryType, l2Load, qcow2VmStateOffset,
} from './qcow2-state.ts';
import { SNAPSHOT_EXTRA_SIZE, qcow2SnapshotTableEncode } from './qcow2-snapshot-table.ts';
import { qcow2FlushVmstate, qcow2PreadL1 } from './qcow2-cluster.ts';

/** What the block layer passes and gets back. @qemu include/block/snapshot.h QEMUSnapshotInfo */
export interface QEMUSnapshotInfo {
  idStr: string;
  name: string;
  vmStateSize: number;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  /** -1 when there is no icount. */
  icount: number;
}

/** Add `delta` to every cluster L2 table `l2Offset` references. */
function l2Refs(s: Qcow2State, tx: Qcow2Tx, l2Offset: number, delta: number): void {
  const t = l2Load(s, l2Offset);
  for (let j = 0; j < s.l2Size; j++) {
    const hi = getU32(t, 8 * j);
    const lo = getU32(t, 8 * j + 4);
    switch (entryType(hi, lo)) {
      case 'normal':
      case 'zero-alloc':
        txRef(tx, entryOffset(hi, lo) / s.clusterSize, delta);
        break;
      case 'compressed': {
        const r = compressedRange(s, hi, lo);
        txRefRange(s, tx, r.offset, r.bytes, delta);
        break;
      }
      case 'unallocated':
      case 'zero-plain':
        break;
    }
  }
}

/** Add `delta` to every L2 table and cluster reachable from an L1 table. */
function treeRefs(s: Qcow2State, tx: Qcow2Tx, l1: Uint8Array, size: number, delta: number): void {
  for (let i = 0; i < size; i++) {
    const off = entryOffset(getU32(l1, 8 * i), getU32(l1, 8 * i + 4));
    if (off === 0) continue;
    if (off % s.clusterSize !== 0) blockFail(EINVAL, `qcow2: L2 table offset 0x${off.toString(16)} unaligned (L1 index: 0x${i.toString(16)})`);
    txRef(tx, off / s.clusterSize, delta);
    l2Refs(s, tx, off, delta);
  }
}

/** `t` with each entry's COPIED flag set iff its cluster's refcount after `tx` is exactly 1. */
function withFlags(s: Qcow2State, tx: Qcow2Tx, t: Uint8Array): Uint8Array {
  const out = t.slice();
  for (let j = 0; j < s.l2Size; j++) {
    const hi = getU32(t, 8 * j);
    const lo = getU32(t, 8 * j + 4);
    const type = entryType(hi, lo);
    if (type !== 'normal' && type !== 'zero-alloc') continue;
    const off = entryOffset(hi, lo);
    entryPut(out, 8 * j, off, txNewRefcount(s, tx, off / s.clusterSize) === 1, type === 'zero-alloc');
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Build the new active L1 table pointing at the L2 tables in `entries` (flags ignored), with
 * exact COPIED flags. A table whose entries' flags would change is copied to a new cluster
 * instead of modified, so nothing reachable from the committed image is written.
 */
function buildActiveL1(s: Qcow2State, tx: Qcow2Tx, entries: Uint8Array, size: number): Uint8Array {
  treeRefs(s, tx, entries, size, 1);
  const out = new Uint8Array(size * 8);
  for (let i = 0; i < size; i++) {
    const off = entryOffset(getU32(entries, 8 * i), getU32(entries, 8 * i + 4));
    if (off === 0) continue;
    const t = l2Load(s, off);
    const want = withFlags(s, tx, t);
    if (sameBytes(t, want)) {
      entryPut(out, 8 * i, off, false);
      continue;
    }
    const copy = txAlloc(s, tx, s.clusterSize);
    txWrite(tx, copy, want);
    txRef(tx, off / s.clusterSize, -1); // the new active tree reaches the copy instead
    entryPut(out, 8 * i, copy, false);
  }
  for (let i = 0; i < size; i++) {
    const off = entryOffset(getU32(out, 8 * i), getU32(out, 8 * i + 4));
    if (off !== 0) entryPut(out, 8 * i, off, txNewRefcount(s, tx, off / s.clusterSize) === 1);
  }
  return out;
}

/** Read a snapshot's L1 table after checking it as QEMU's qcow2_validate_table does. */
function readSnapshotL1(s: Qcow2State, sn: Qcow2Snapshot): Uint8Array {
  if (sn.l1Size > QCOW_MAX_L1_SIZE / 8) blockFail(EFBIG, 'Snapshot L1 table too large');
  if (sn.l1TableOffset % s.clusterSize !== 0) blockFail(EINVAL, 'Snapshot L1 table offset invalid');
  const l1 = new Uint8Array(sn.l1Size * 8);
  s.file.pread(sn.l1TableOffset, l1);
  return l1;
}

/** Replace the snapshot table in `tx` with `list`. */
function txSnapshotTable(s: Qcow2State, tx: Qcow2Tx, list: Qcow2Snapshot[]): number {
  const table = qcow2SnapshotTableEncode(list);
  txRefRange(s, tx, s.snapshotsOffset, s.snapshotsSize, -1);
  tx.fields.nbSnapshots = list.length;
  tx.fields.snapshotsOffset = table.length > 0 ? txAlloc(s, tx, table.length) : 0;
  if (table.length > 0) txWrite(tx, tx.fields.snapshotsOffset, table);
  return table.length;
}

/** Install a new active L1 of `size` entries in `tx`, freeing the old table. */
function txActiveL1(s: Qcow2State, tx: Qcow2Tx, l1: Uint8Array, size: number, freeOld: boolean): void {
  if (freeOld) txRefRange(s, tx, s.l1TableOffset, s.l1Size * 8, -1);
  tx.fields.l1Size = size;
  tx.fields.l1TableOffset = size > 0 ? txAlloc(s, tx, size * 8) : 0;
  if (size > 0) txWrite(tx, tx.fields.l1TableOffset, l1);
}

/** @qemu find_new_snapshot_id: one more than the largest numeric id. */
function newSnapshotId(s: Qcow2State): string {
  let max = 0;
  for (const sn of s.snapshots) {
    const m = /^\s*\+?(\d+)/.exec(sn.idStr);
    const id = m ? Number(m[1]) : 0;
    if (id > max) max = id;
  }
  return String(max + 1);
}

/** @qemu find_snapshot_by_id_and_name */
export function qcow2FindSnapshot(s: Qcow2State, id: string | null, name: string | null): number {
  return s.snapshots.findIndex((sn) => (id === null || sn.idStr === id) && (name === null || sn.name === name));
}

/** By id first, then by name. @qemu find_snapshot_by_id_or_name */
export function qcow2FindSnapshotByIdOrName(s: Qcow2State, idOrName: string): number {
  const i = qcow2FindSnapshot(s, idOrName, null);
  return i >= 0 ? i : qcow2FindSnapshot(s, null, idOrName);
}

/**
 * Create a snapshot of the current disk and vmstate area. The id is generated (returned);
 * `info.idStr` is ignored, as in 7.2. The vmstate area then disappears from the active image.
 * @qemu block/qcow2-snapshot.c qcow2_snapshot_create
 */
export function qcow2SnapshotCreate(s: Qcow2State, info: QEMUSnapshotInfo): string {
  qcow2FlushVmstate(s);
  if (s.snapshots.length >= QCOW_MAX_SNAPSHOTS) blockFail(EFBIG, strerrorTooMany());
  const idStr = newSnapshotId(s);
  const tx = qcow2TxBegin(s);
  const entries = s.l1.slice(0, Math.min(s.l1Size, s.l1VmStateIndex) * 8);
  const padded = new Uint8Array(s.l1Size * 8);
  padded.set(entries);
  const l1 = buildActiveL1(s, tx, padded, s.l1Size);
  txActiveL1(s, tx, l1, s.l1Size, false); // the old active table now belongs to the snapshot
  const sn: Qcow2Snapshot = {
    l1TableOffset: s.l1TableOffset, l1Size: s.l1Size, idStr, name: info.name, dateSec: info.dateSec,
    dateNsec: info.dateNsec, vmClockNsec: info.vmClockNsec, vmStateSize: info.vmStateSize, diskSize: s.size,
    icount: info.icount, extraDataSize: SNAPSHOT_EXTRA_SIZE, unknownExtraData: null,
  };
  const list = [...s.snapshots, sn];
  const size = txSnapshotTable(s, tx, list);
  tx.onCommitted = () => {
    s.l1 = l1;
    s.snapshots = list;
    s.snapshotsSize = size;
  };
  qcow2TxCommit(s, tx);
  return idStr;
}

function strerrorTooMany(): string {
  return `qcow2: too many snapshots (at most ${QCOW_MAX_SNAPSHOTS})`;
}

/**
 * Make the active image the snapshot `idOrName` (id first, then name): disk contents and
 * vmstate area. @qemu block/qcow2-snapshot.c qcow2_snapshot_goto
 */
export function qcow2SnapshotGoto(s: Qcow2State, idOrName: string): void {
  qcow2FlushVmstate(s);
  const idx = qcow2FindSnapshotByIdOrName(s, idOrName);
  if (idx < 0) blockFail(ENOENT, 'No such file or directory');
  const sn = s.snapshots[idx]!;
  const snL1 = readSnapshotL1(s, sn);
  if (sn.diskSize !== s.size) {
    blockFail(ENOTSUP, 'qcow2: Loading snapshots with different disk size is not implemented');
  }
  const size = Math.max(s.l1Size, sn.l1Size);
  const entries = new Uint8Array(size * 8);
  entries.set(snL1);
  const tx = qcow2TxBegin(s);
  treeRefs(s, tx, s.l1, s.l1Size, -1);
  const l1 = buildActiveL1(s, tx, entries, size);
  txActiveL1(s, tx, l1, size, true);
  tx.onCommitted = () => {
    s.l1 = l1;
  };
  qcow2TxCommit(s, tx);
}

/**
 * Delete the first snapshot matching `id` and/or `name` (null: any). Its clusters are freed and
 * the active image's COPIED flags updated in the same commit. @qemu qcow2_snapshot_delete
 */
export function qcow2SnapshotDelete(s: Qcow2State, id: string | null, name: string | null): void {
  qcow2FlushVmstate(s);
  const idx = qcow2FindSnapshot(s, id, name);
  if (idx < 0) blockFail(ENOENT, "Can't find the snapshot");
  const sn = s.snapshots[idx]!;
  const snL1 = readSnapshotL1(s, sn);
  const tx = qcow2TxBegin(s);
  treeRefs(s, tx, snL1, sn.l1Size, -1);
  txRefRange(s, tx, sn.l1TableOffset, sn.l1Size * 8, -1);
  treeRefs(s, tx, s.l1, s.l1Size, -1);
  const l1 = buildActiveL1(s, tx, s.l1, s.l1Size);
  const changed = !sameBytes(l1, s.l1.subarray(0, s.l1Size * 8));
  if (changed) txActiveL1(s, tx, l1, s.l1Size, true);
  const list = s.snapshots.filter((_, i) => i !== idx);
  const size = txSnapshotTable(s, tx, list);
  tx.onCommitted = () => {
    if (changed) s.l1 = l1;
    s.snapshots = list;
    s.snapshotsSize = size;
  };
  qcow2TxCommit(s, tx);
}

/**
 * Read `buf.length` bytes at `pos` of snapshot `idOrName`'s VM state without going to it: the
 * active image stays as it is (atomic loadvm reads and checks the state before reverting disks).
 */
export function qcow2SnapshotLoadVmstate(s: Qcow2State, idOrName: string, pos: number, buf: Uint8Array): void {
  qcow2FlushVmstate(s);
  const idx = qcow2FindSnapshotByIdOrName(s, idOrName);
  if (idx < 0) blockFail(ENOENT, 'No such file or directory');
  const sn = s.snapshots[idx]!;
  qcow2PreadL1(s, readSnapshotL1(s, sn), sn.l1Size, qcow2VmStateOffset(s) + pos, buf);
}

/** The snapshot list in table order. @qemu qcow2_snapshot_list */
export function qcow2SnapshotList(s: Qcow2State): QEMUSnapshotInfo[] {
  return s.snapshots.map((sn) => ({
    idStr: sn.idStr, name: sn.name, vmStateSize: sn.vmStateSize, dateSec: sn.dateSec,
    dateNsec: sn.dateNsec, vmClockNsec: sn.vmClockNsec, icount: sn.icount,
  }));
}
