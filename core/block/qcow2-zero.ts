// Zero writes and discards on qcow2 (block/qcow2-cluster.c qcow2_subcluster_zeroize,
// zero_in_l2_slice, qcow2_cluster_discard, discard_in_l2_slice with full_discard = false).
// Whole clusters change only their L2 entry (v3: the zero flag; v2: unallocated, which reads as
// zero since detvm has no backing files); partial clusters of a zero write are written with
// zeros, those of a discard are left alone. Order: L2 entries, barrier, then the refcounts of
// the clusters they no longer use, so a kill leaks at most.

import { getU32 } from './qcow2-format.ts';
import { l2ForWrite, l2Span, qcow2FlushVmstate, qcow2Pwrite } from './qcow2-cluster.ts';
import { qcow2FreeAnyCluster } from './qcow2-refcount.ts';
import {
  type Qcow2State, entryCopied, entryOffset, entryPut, entryType, l1Hi, l1Lo, l2Load, qcow2Barrier, tableWriteRange,
} from './qcow2-state.ts';

/** 'zero': keep host clusters allocated; 'zero-unmap': may free them; 'discard': free them. */
export type Qcow2ZeroMode = 'zero' | 'zero-unmap' | 'discard';

/**
 * Make [offset, offset + bytes) read as zero ('zero', 'zero-unmap') or discard its whole
 * clusters ('discard'; a partial cluster counts only at the end of the disk).
 * @qemu qcow2_co_pwrite_zeroes / qcow2_co_pdiscard
 */
export function qcow2ZeroClusters(s: Qcow2State, offset: number, bytes: number, mode: Qcow2ZeroMode): void {
  qcow2FlushVmstate(s);
  const cs = s.clusterSize;
  const end = offset + bytes;
  const first = Math.ceil(offset / cs) * cs;
  let last = Math.floor(end / cs) * cs;
  if (mode === 'discard' && end === s.size && offset % cs === 0) last = Math.ceil(end / cs) * cs;
  if (mode !== 'discard') {
    const headEnd = Math.min(first, end);
    if (offset < headEnd) qcow2Pwrite(s, offset, new Uint8Array(headEnd - offset));
    if (last >= first && last < end) qcow2Pwrite(s, last, new Uint8Array(end - last));
  }
  for (let g = first; g < last;) {
    const i = Math.floor(g / l2Span(s));
    const chunkEnd = Math.min(last, (i + 1) * l2Span(s));
    if (i < s.l1Size && entryOffset(l1Hi(s, i), l1Lo(s, i)) !== 0) zeroInL2(s, i, g, chunkEnd, mode);
    g = chunkEnd;
  }
}

/** The entry a cluster gets, or null to leave it; `free` says whether its host cluster is dropped. */
function newEntry(s: Qcow2State, hi: number, lo: number, mode: Qcow2ZeroMode): { offset: number; copied: boolean; zero: boolean; free: boolean } | null {
  const t = entryType(hi, lo);
  const v3 = s.version >= 3;
  if (mode === 'discard') {
    if (t === 'unallocated' || t === 'zero-plain') return null;
    return { offset: 0, copied: false, zero: v3, free: true };
  }
  if (t === 'zero-plain' || (t === 'zero-alloc' && mode === 'zero')) return null;
  if (!v3) return t === 'unallocated' ? null : { offset: 0, copied: false, zero: false, free: true };
  if (mode === 'zero-unmap' || t === 'compressed' || t === 'unallocated') {
    return { offset: 0, copied: false, zero: true, free: t !== 'unallocated' };
  }
  return { offset: entryOffset(hi, lo), copied: entryCopied(hi), zero: true, free: false };
}

function zeroInL2(s: Qcow2State, i: number, from: number, to: number, mode: Qcow2ZeroMode): void {
  const cs = s.clusterSize;
  const i0 = Math.floor(from / cs) % s.l2Size;
  const i1 = i0 + (to - from) / cs;
  const current = l2Load(s, entryOffset(l1Hi(s, i), l1Lo(s, i)));
  let changes = false;
  for (let k = i0; k < i1 && !changes; k++) changes = newEntry(s, getU32(current, 8 * k), getU32(current, 8 * k + 4), mode) !== null;
  if (!changes) return;
  const l2 = l2ForWrite(s, i);
  const freed: Array<[number, number]> = [];
  for (let k = i0; k < i1; k++) {
    const hi = getU32(l2.table, 8 * k);
    const lo = getU32(l2.table, 8 * k + 4);
    const e = newEntry(s, hi, lo, mode);
    if (!e) continue;
    if (e.free) freed.push([hi, lo]);
    entryPut(l2.table, 8 * k, e.offset, e.copied, e.zero);
  }
  tableWriteRange(s, l2.offset, l2.table, 8 * i0, 8 * i1);
  if (freed.length === 0) return;
  qcow2Barrier(s);
  for (const [hi, lo] of freed) qcow2FreeAnyCluster(s, hi, lo);
}
