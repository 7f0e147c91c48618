// qcow2 consistency check and repair (block/qcow2-refcount.c qcow2_check_refcounts,
// check_oflag_copied; qemu-img check's report). References are counted by walking the header,
// the active and every snapshot L1 table with their L2 tables and clusters, the snapshot table,
// the refcount table and blocks; each is compared with the stored refcount. Stored < referenced is
// a corruption (a cluster may be handed out twice), stored > referenced a leak (wasted space).
// COPIED flags in the active tree must say "refcount is 1". Messages use QEMU's texts.
// Repair raises and lowers refcounts in one transaction, then fixes COPIED flags in place.

import { EIO, blockFail } from './errno.ts';
import { QCOW2_INCOMPAT_DIRTY, getU32, putU64Big, HDR_INCOMPAT } from './qcow2-format.ts';
import { qcow2TxBegin, qcow2TxCommit, txRef } from './qcow2-commit.ts';
import { qcow2FlushVmstate } from './qcow2-cluster.ts';
import {
  type Qcow2State, compressedRange, entryCopied, entryOffset, entryPut, entryType, fileWrite, l1Hi, l1Lo, l2Load,
  qcow2Barrier, qcow2GetRefcount, tableWriteRange,
} from './qcow2-state.ts';

/** @qemu include/block/block-common.h BdrvCheckResult (+ BlockFragInfo) */
export interface Qcow2CheckResult {
  corruptions: number;
  leaks: number;
  checkErrors: number;
  corruptionsFixed: number;
  leaksFixed: number;
  imageEndOffset: number;
  totalClusters: number;
  allocatedClusters: number;
  fragmentedClusters: number;
  compressedClusters: number;
  /** The lines QEMU prints to stderr while checking, in order. */
  messages: string[];
}

/** What a check repairs: nothing, leaks (BDRV_FIX_LEAKS), or leaks and errors (BDRV_FIX_ERRORS too). */
export type Qcow2CheckFix = 'none' | 'leaks' | 'all';

interface Walk {
  refs: number[];
  res: Qcow2CheckResult;
  nextContiguous: number;
}

function hex(n: number): string {
  return n.toString(16);
}

function inc(s: Qcow2State, w: Walk, offset: number, bytes: number): void {
  if (bytes <= 0) return;
  const first = Math.floor(offset / s.clusterSize);
  const last = Math.floor((offset + bytes - 1) / s.clusterSize);
  for (let c = first; c <= last; c++) w.refs[c] = (w.refs[c] ?? 0) + 1;
}

/** @qemu check_refcounts_l2 (fragmentation is counted within one L2 table, as QEMU does) */
function checkL2(s: Qcow2State, w: Walk, l2Offset: number, active: boolean): void {
  const t = l2Load(s, l2Offset);
  w.nextContiguous = 0;
  for (let j = 0; j < s.l2Size; j++) {
    const hi = getU32(t, 8 * j);
    const lo = getU32(t, 8 * j + 4);
    const type = entryType(hi, lo);
    if (type === 'compressed') {
      const r = compressedRange(s, hi, lo);
      if (active) {
        w.res.allocatedClusters++;
        w.res.compressedClusters++;
        w.res.fragmentedClusters++;
      }
      inc(s, w, r.offset, r.bytes);
    } else if (type === 'normal' || type === 'zero-alloc') {
      const off = entryOffset(hi, lo);
      if (off % s.clusterSize !== 0) {
        w.res.messages.push(`ERROR offset=${hex(off)}: Cluster is not properly aligned; L2 entry corrupted.`);
        w.res.corruptions++;
        continue;
      }
      if (active) {
        w.res.allocatedClusters++;
        if (w.nextContiguous !== 0 && off !== w.nextContiguous) w.res.fragmentedClusters++;
        w.nextContiguous = off + s.clusterSize;
      }
      inc(s, w, off, s.clusterSize);
    }
  }
}

/** @qemu check_refcounts_l1 */
function checkL1(s: Qcow2State, w: Walk, l1Offset: number, l1Size: number, active: boolean): void {
  inc(s, w, l1Offset, l1Size * 8);
  const l1 = new Uint8Array(l1Size * 8);
  if (active) l1.set(s.l1.subarray(0, l1Size * 8));
  else s.file.pread(l1Offset, l1);
  for (let i = 0; i < l1Size; i++) {
    const off = entryOffset(getU32(l1, 8 * i), getU32(l1, 8 * i + 4));
    if (off === 0) continue;
    inc(s, w, off, s.clusterSize);
    if (off % s.clusterSize !== 0) {
      w.res.messages.push(`ERROR l2_offset=${hex(off)}: Table is not cluster aligned; L1 entry corrupted`);
      w.res.corruptions++;
      continue;
    }
    checkL2(s, w, off, active);
  }
}

/** Count every reference to every cluster. @qemu calculate_refcounts */
function calculateRefcounts(s: Qcow2State, res: Qcow2CheckResult): number[] {
  const w: Walk = { refs: [], res, nextContiguous: 0 };
  inc(s, w, 0, s.clusterSize);
  checkL1(s, w, s.l1TableOffset, s.l1Size, true);
  for (const sn of s.snapshots) checkL1(s, w, sn.l1TableOffset, sn.l1Size, false);
  inc(s, w, s.snapshotsOffset, s.snapshotsSize);
  inc(s, w, s.refcountTableOffset, s.refcountTableClusters * s.clusterSize);
  const fileClusters = Math.ceil(s.file.size() / s.clusterSize);
  s.refcountTable.forEach((off, i) => {
    if (off === 0) return;
    if (off % s.clusterSize !== 0) {
      res.messages.push(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
      res.corruptions++;
      return;
    }
    if (off / s.clusterSize >= fileClusters) {
      res.messages.push(`ERROR refcount block ${i} is outside image`);
      res.corruptions++;
      return;
    }
    inc(s, w, off, s.clusterSize);
  });
  return w.refs;
}

/** Check (and with `fix`, repair) the image. @qemu qcow2_co_check_locked */
export function qcow2Check(s: Qcow2State, fix: Qcow2CheckFix = 'none'): Qcow2CheckResult {
  if (!s.readOnly) qcow2FlushVmstate(s);
  const res: Qcow2CheckResult = {
    corruptions: 0, leaks: 0, checkErrors: 0, corruptionsFixed: 0, leaksFixed: 0, imageEndOffset: 0,
    totalClusters: Math.ceil(s.size / s.clusterSize), allocatedClusters: 0, fragmentedClusters: 0,
    compressedClusters: 0, messages: [],
  };
  const refs = calculateRefcounts(s, res);
  const n = Math.max(Math.ceil(s.file.size() / s.clusterSize), refs.length);
  const tx = fix === 'none' ? null : qcow2TxBegin(s);
  let highest = -1;
  for (let c = 0; c < n; c++) {
    const stored = qcow2GetRefcount(s, c);
    const ref = refs[c] ?? 0;
    if (stored > 0 || ref > 0) highest = c;
    if (stored === ref) continue;
    const fixable = tx !== null && (stored > ref || fix === 'all');
    const word = fixable ? 'Repairing' : stored < ref ? 'ERROR' : 'Leaked';
    res.messages.push(`${word} cluster ${c} refcount=${stored} reference=${ref}`);
    if (fixable) {
      txRef(tx, c, ref - stored);
      if (stored > ref) res.leaksFixed++;
      else res.corruptionsFixed++;
    } else if (stored < ref) res.corruptions++;
    else res.leaks++;
  }
  res.imageEndOffset = (highest + 1) * s.clusterSize;
  if (tx !== null && tx.deltas.size > 0) {
    tx.busy = (c) => (refs[c] ?? 0) > 0; // referenced clusters are not free, whatever their count says
    qcow2TxCommit(s, tx);
  }
  checkOflagCopied(s, res, fix === 'all');
  if (fix !== 'none' && res.corruptions === 0 && (s.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) !== 0n) {
    qcow2MarkClean(s);
  }
  return res;
}

/** @qemu check_oflag_copied */
function checkOflagCopied(s: Qcow2State, res: Qcow2CheckResult, repair: boolean): void {
  for (let i = 0; i < s.l1Size; i++) {
    const l2 = entryOffset(l1Hi(s, i), l1Lo(s, i));
    if (l2 === 0 || l2 % s.clusterSize !== 0) continue;
    const rc = qcow2GetRefcount(s, l2 / s.clusterSize);
    if ((rc === 1) !== entryCopied(l1Hi(s, i))) {
      const e = (BigInt(l1Hi(s, i)) << 32n) | BigInt(l1Lo(s, i));
      res.messages.push(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${e.toString(16)} refcount=${rc}`);
      if (repair) {
        entryPut(s.l1, 8 * i, l2, rc === 1);
        fileWrite(s, s.l1TableOffset + 8 * i, s.l1.subarray(8 * i, 8 * i + 8));
        res.corruptionsFixed++;
      } else res.corruptions++;
    }
    const t = l2Load(s, l2);
    for (let j = 0; j < s.l2Size; j++) {
      const hi = getU32(t, 8 * j);
      const lo = getU32(t, 8 * j + 4);
      const type = entryType(hi, lo);
      if (type !== 'normal' && type !== 'zero-alloc') continue;
      const off = entryOffset(hi, lo);
      if (off % s.clusterSize !== 0) continue;
      const drc = qcow2GetRefcount(s, off / s.clusterSize);
      if ((drc === 1) === entryCopied(hi)) continue;
      const e = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      res.messages.push(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED data cluster: l2_entry=${e.toString(16)} refcount=${drc}`);
      if (repair) {
        entryPut(t, 8 * j, off, drc === 1, type === 'zero-alloc');
        tableWriteRange(s, l2, t, 8 * j, 8 * j + 8);
        res.corruptionsFixed++;
      } else res.corruptions++;
    }
  }
  qcow2Barrier(s);
}

/** Clear the dirty bit. @qemu qcow2_mark_clean */
export function qcow2MarkClean(s: Qcow2State): void {
  if (s.readOnly) blockFail(EIO, 'qcow2: cannot mark a read-only image clean');
  qcow2Barrier(s);
  s.incompatibleFeatures &= ~QCOW2_INCOMPAT_DIRTY;
  const b = new Uint8Array(8);
  putU64Big(b, 0, s.incompatibleFeatures);
  fileWrite(s, HDR_INCOMPAT, b);
  qcow2Barrier(s);
}

/** qemu-img check's report (stdout part) for a result. @qemu qemu-img.c img_check */
export function qcow2CheckReportText(r: Qcow2CheckResult): string {
  let out = '';
  if (r.corruptionsFixed || r.leaksFixed) {
    out += `The following inconsistencies were found and repaired:\n\n    ${r.leaksFixed} leaked clusters\n    ${r.corruptionsFixed} corruptions\n\n`;
  }
  if (!(r.corruptions || r.leaks || r.checkErrors)) {
    out += 'No errors were found on the image.\n';
  } else {
    if (r.corruptions) out += `\n${r.corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`;
    if (r.leaks) out += `\n${r.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`;
    if (r.checkErrors) out += `\n${r.checkErrors} internal errors have occurred during the check.\n`;
  }
  if (r.totalClusters !== 0 && r.allocatedClusters !== 0) {
    const pct = (a: number, b: number): string => ((a * 100) / b).toFixed(2);
    out += `${r.allocatedClusters}/${r.totalClusters} = ${pct(r.allocatedClusters, r.totalClusters)}% allocated, `
      + `${pct(r.fragmentedClusters, r.allocatedClusters)}% fragmented, ${pct(r.compressedClusters, r.allocatedClusters)}% compressed clusters\n`;
  }
  if (r.imageEndOffset) out += `Image end offset: ${r.imageEndOffset}\n`;
  return out;
}
