// Guest cluster mapping for qcow2 (block/qcow2-cluster.c): reads through L1/L2, writes with
// cluster allocation and copy-on-write, L1 growth, and the vmstate write buffer (zero writes and
// discards are qcow2-zero.ts). Write ordering:
//   1. allocate (refcounts raised, written through)      2. barrier
//   3. write the guest data into the new clusters         4. point the L2 entries at them
//   5. barrier                                            6. lower the refcounts of replaced clusters
// An L2 table is allocated or copied the same way before its L1 entry is written. A kill at any
// point leaks at most the clusters of the write in progress; nothing a snapshot references is
// ever written, because only clusters whose entry carries COPIED (refcount 1) are written in place.

import { inflateRawSync } from 'node:zlib';
import { EFBIG, EIO, blockFail } from './errno.ts';
import { QCOW_MAX_L1_SIZE, getU32 } from './qcow2-format.ts';
import { qcow2TxBegin, qcow2TxCommit, txAlloc, txRefRange, txWrite } from './qcow2-commit.ts';
import { qcow2AllocClusters, qcow2FreeAnyCluster, qcow2FreeClusters } from './qcow2-refcount.ts';
import {
  type Qcow2State, compressedRange, entryCopied, entryOffset, entryPut, entryType, fileWrite, l1Hi, l1Lo,
  l2CachePut, l2Load, qcow2Barrier, qcow2VmStateOffset, tableWriteRange,
} from './qcow2-state.ts';

/** Bytes of guest space one L2 table maps. */
export function l2Span(s: Qcow2State): number {
  return s.clusterSize * s.l2Size;
}

/**
 * Make the active L1 table hold at least `minSize` entries: a new table (grown by half, as
 * QEMU's non-exact growth) committed in one transaction. @qemu qcow2_grow_l1_table
 */
export function qcow2GrowL1Table(s: Qcow2State, minSize: number, exact = false): void {
  qcow2FlushVmstate(s);
  if (minSize <= s.l1Size) return;
  let newSize = minSize;
  if (!exact) {
    newSize = Math.max(1, s.l1Size);
    while (minSize > newSize) newSize = Math.ceil((newSize * 3) / 2);
  }
  if (newSize * 8 > QCOW_MAX_L1_SIZE) blockFail(EFBIG, 'Active L1 table too large');
  const table = new Uint8Array(newSize * 8);
  table.set(s.l1.subarray(0, s.l1Size * 8));
  const tx = qcow2TxBegin(s);
  const offset = txAlloc(s, tx, table.length);
  txWrite(tx, offset, table);
  txRefRange(s, tx, s.l1TableOffset, s.l1Size * 8, -1);
  tx.fields.l1Size = newSize;
  tx.fields.l1TableOffset = offset;
  tx.onCommitted = () => {
    s.l1 = table;
  };
  qcow2TxCommit(s, tx);
}

/** Write active L1 entry `i` (in memory and through to the file). */
function l1Set(s: Qcow2State, i: number, offset: number, copied: boolean): void {
  entryPut(s.l1, 8 * i, offset, copied);
  fileWrite(s, s.l1TableOffset + 8 * i, s.l1.subarray(8 * i, 8 * i + 8));
}

/**
 * The L2 table for active L1 index `i`, ready to be written in place: allocated when missing,
 * copied when shared with a snapshot (its L1 entry lacks COPIED). @qemu get_cluster_table, l2_allocate
 */
export function l2ForWrite(s: Qcow2State, i: number): { offset: number; table: Uint8Array } {
  if (i >= s.l1Size) qcow2GrowL1Table(s, i + 1);
  const hi = l1Hi(s, i);
  const old = entryOffset(hi, l1Lo(s, i));
  if (old !== 0 && entryCopied(hi)) return { offset: old, table: l2Load(s, old) };
  const table = old === 0 ? new Uint8Array(s.clusterSize) : l2Load(s, old).slice();
  const offset = qcow2AllocClusters(s, s.clusterSize);
  qcow2Barrier(s);
  fileWrite(s, offset, table);
  qcow2Barrier(s);
  l1Set(s, i, offset, true);
  l2CachePut(s, offset, table);
  if (old !== 0) {
    qcow2Barrier(s);
    qcow2FreeClusters(s, old, s.clusterSize);
  }
  return { offset, table };
}

/** Inflate one compressed cluster. @qemu block/qcow2-threads.c qcow2_zlib_decompress */
function decompressCluster(s: Qcow2State, hi: number, lo: number): Uint8Array {
  const r = compressedRange(s, hi, lo);
  const key = `${r.offset}:${r.bytes}`;
  if (s.compressedCache?.key === key) return s.compressedCache.data;
  const input = new Uint8Array(r.bytes);
  s.file.pread(r.offset, input);
  let out: Uint8Array;
  try {
    out = inflateRawSync(input, { maxOutputLength: s.clusterSize });
  } catch {
    return blockFail(EIO, `qcow2: compressed cluster at 0x${r.offset.toString(16)} does not inflate`);
  }
  const data = new Uint8Array(s.clusterSize);
  data.set(out.subarray(0, s.clusterSize));
  s.compressedCache = { key, data };
  return data;
}

/** The current guest contents of a cluster given its L2 entry (for copy-on-write). */
function clusterContents(s: Qcow2State, hi: number, lo: number): Uint8Array {
  switch (entryType(hi, lo)) {
    case 'normal': {
      const b = new Uint8Array(s.clusterSize);
      s.file.pread(entryOffset(hi, lo), b);
      return b;
    }
    case 'compressed':
      return decompressCluster(s, hi, lo).slice();
    case 'unallocated':
    case 'zero-plain':
    case 'zero-alloc':
      return new Uint8Array(s.clusterSize);
  }
}

/**
 * Read guest bytes at `offset` into `buf` (any offset, including the vmstate area). Unallocated
 * and zero clusters read as zero (detvm has no backing files). @qemu qcow2_co_preadv_part
 */
export function qcow2Pread(s: Qcow2State, offset: number, buf: Uint8Array): void {
  qcow2FlushVmstate(s);
  qcow2PreadL1(s, s.l1, s.l1Size, offset, buf);
}

/**
 * Read guest bytes through any L1 table (the active one or a snapshot's), without touching the
 * active image: how a snapshot's VM state is read before deciding to load it.
 */
export function qcow2PreadL1(s: Qcow2State, l1: Uint8Array, l1Size: number, offset: number, buf: Uint8Array): void {
  let runHost = -1;
  let runBuf = 0;
  let runLen = 0;
  const flush = (): void => {
    if (runLen > 0) s.file.pread(runHost, buf.subarray(runBuf, runBuf + runLen));
    runLen = 0;
  };
  let done = 0;
  while (done < buf.length) {
    const g = offset + done;
    const inCluster = g % s.clusterSize;
    const n = Math.min(buf.length - done, s.clusterSize - inCluster);
    const i = Math.floor(g / l2Span(s));
    const l2Offset = i < l1Size ? entryOffset(getU32(l1, 8 * i), getU32(l1, 8 * i + 4)) : 0;
    let host = -1;
    if (l2Offset !== 0) {
      const t = l2Load(s, l2Offset);
      const at = 8 * (Math.floor(g / s.clusterSize) % s.l2Size);
      const hi = getU32(t, at);
      const lo = getU32(t, at + 4);
      const type = entryType(hi, lo);
      if (type === 'normal') host = entryOffset(hi, lo) + inCluster;
      else if (type === 'compressed') {
        flush();
        buf.set(decompressCluster(s, hi, lo).subarray(inCluster, inCluster + n), done);
        done += n;
        continue;
      }
    }
    if (host < 0) {
      flush();
      buf.fill(0, done, done + n);
    } else if (runLen > 0 && runHost + runLen === host) {
      runLen += n;
    } else {
      flush();
      runHost = host;
      runBuf = done;
      runLen = n;
    }
    done += n;
  }
  flush();
}

/** One guest cluster a write touches. */
interface Piece {
  l2i: number;
  hi: number;
  lo: number;
  from: number;
  len: number;
  dataOff: number;
}

/** Write the pieces that need new clusters: allocate, fill, link, then free what they replace. */
function writeAllocating(s: Qcow2State, l2: { offset: number; table: Uint8Array }, ps: Piece[], data: Uint8Array): void {
  const cs = s.clusterSize;
  const base = qcow2AllocClusters(s, ps.length * cs);
  qcow2Barrier(s);
  // Runs of whole clusters contiguous in `data` go out as they are; a partial cluster is
  // completed from its old contents first (copy-on-write). All land before the L2 update.
  for (let k = 0; k < ps.length;) {
    const p = ps[k]!;
    if (p.len < cs) {
      const buf = clusterContents(s, p.hi, p.lo);
      buf.set(data.subarray(p.dataOff, p.dataOff + p.len), p.from);
      fileWrite(s, base + k * cs, buf);
      k++;
      continue;
    }
    let e = k + 1;
    while (e < ps.length && ps[e]!.len === cs && ps[e]!.dataOff === ps[e - 1]!.dataOff + cs) e++;
    fileWrite(s, base + k * cs, data.subarray(p.dataOff, p.dataOff + (e - k) * cs));
    k = e;
  }
  ps.forEach((p, k) => entryPut(l2.table, 8 * p.l2i, base + k * cs, true));
  tableWriteRange(s, l2.offset, l2.table, 8 * ps[0]!.l2i, 8 * ps[ps.length - 1]!.l2i + 8);
  const replaced = ps.filter((p) => {
    const t = entryType(p.hi, p.lo);
    return t === 'normal' || t === 'zero-alloc' || t === 'compressed';
  });
  if (replaced.length > 0) {
    qcow2Barrier(s);
    for (const p of replaced) qcow2FreeAnyCluster(s, p.hi, p.lo);
  }
}

/** Write within the range one L2 table maps. */
function writeInL2(s: Qcow2State, offset: number, data: Uint8Array, dataOff: number, len: number): void {
  const cs = s.clusterSize;
  const l2 = l2ForWrite(s, Math.floor(offset / l2Span(s)));
  const alloc: Piece[] = [];
  let done = 0;
  while (done < len) {
    const g = offset + done;
    const from = g % cs;
    const n = Math.min(len - done, cs - from);
    const l2i = Math.floor(g / cs) % s.l2Size;
    const hi = getU32(l2.table, 8 * l2i);
    const lo = getU32(l2.table, 8 * l2i + 4);
    const type = entryType(hi, lo);
    const piece = data.subarray(dataOff + done, dataOff + done + n);
    if (type === 'normal' && entryCopied(hi)) {
      fileWrite(s, entryOffset(hi, lo) + from, piece);
    } else if (type === 'zero-alloc' && entryCopied(hi)) {
      // Our own preallocated zero cluster: fill it in place, then drop the zero flag. A kill in
      // between leaves it reading as zero, as before the write. @qemu handle_copied
      const host = entryOffset(hi, lo);
      const full = new Uint8Array(cs);
      full.set(piece, from);
      fileWrite(s, host, full);
      qcow2Barrier(s);
      entryPut(l2.table, 8 * l2i, host, true);
      tableWriteRange(s, l2.offset, l2.table, 8 * l2i, 8 * l2i + 8);
    } else {
      alloc.push({ l2i, hi, lo, from, len: n, dataOff: dataOff + done });
    }
    done += n;
  }
  if (alloc.length > 0) writeAllocating(s, l2, alloc, data);
}

/**
 * Write `data` at guest `offset` (including the vmstate area). Returns once the data and the
 * metadata that make it reachable are written to the file. @qemu qcow2_co_pwritev_part
 */
export function qcow2Pwrite(s: Qcow2State, offset: number, data: Uint8Array): void {
  qcow2FlushVmstate(s);
  pwriteNow(s, offset, data);
}

/** Gather VM state until this many bytes, then write it out. */
const VMSTATE_BUF_MAX = 64 * 1024 * 1024;
/** The first buffer's size; it grows fourfold as VM state arrives. */
const VMSTATE_BUF_FIRST = 1024 * 1024;

/** Queue vmstate bytes at `pos` (a copy), writing out what was queued if not contiguous. */
export function qcow2BufferVmstate(s: Qcow2State, pos: number, data: Uint8Array): void {
  let b = s.vmstateBuf;
  if (b && (pos !== b.pos + b.bytes || b.bytes + data.length > VMSTATE_BUF_MAX)) {
    qcow2FlushVmstate(s);
    b = null;
  }
  if (data.length >= VMSTATE_BUF_MAX) {
    pwriteNow(s, qcow2VmStateOffset(s) + pos, data);
    return;
  }
  if (!b) b = s.vmstateBuf = { pos, bytes: 0, buf: new Uint8Array(Math.max(VMSTATE_BUF_FIRST, data.length)) };
  if (b.bytes + data.length > b.buf.length) {
    // Grow fourfold (one copy of what is queued), so a whole RAM image is copied about once.
    let cap = b.buf.length;
    while (cap < b.bytes + data.length) cap *= 4;
    const grown = new Uint8Array(Math.min(cap, VMSTATE_BUF_MAX));
    grown.set(b.buf.subarray(0, b.bytes));
    b.buf = grown;
  }
  b.buf.set(data, b.bytes);
  b.bytes += data.length;
}

/** Write queued VM state into the image. Every other operation on the image calls this first. */
export function qcow2FlushVmstate(s: Qcow2State): void {
  const b = s.vmstateBuf;
  if (!b) return;
  s.vmstateBuf = null;
  pwriteNow(s, qcow2VmStateOffset(s) + b.pos, b.buf.subarray(0, b.bytes));
}

function pwriteNow(s: Qcow2State, offset: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    const g = offset + done;
    const n = Math.min(data.length - done, l2Span(s) - (g % l2Span(s)));
    writeInL2(s, g, data, done, n);
    done += n;
  }
}
