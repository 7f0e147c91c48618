// In-place refcount updates and cluster allocation for the guest write path (block/qcow2-refcount.c
// qcow2_alloc_clusters, update_refcount, qcow2_free_clusters, qcow2_free_any_cluster). Allocation
// raises refcounts before anything points at the clusters; freeing lowers them only after the
// pointer is gone (the caller puts a barrier in between), so a process killed in between leaks
// clusters but never leaves a reference without a count. A missing refcount block is created
// through a transaction (qcow2-commit.ts), after which the free-run search starts again, as
// QEMU's alloc_refcount_block returns -EAGAIN.

import { AssertionError, assert } from '../util/index.ts';
import { EIO, ERANGE, blockFail } from './errno.ts';
import { qcow2TxBegin, qcow2TxCommit } from './qcow2-commit.ts';
import {
  type Qcow2State, cacheDropRange, compressedRange, entryOffset, entryType, qcow2GetRefcount, rbByteRange, rbGet,
  rbLoad, rbSet, sizeToClusters, tableWriteRange,
} from './qcow2-state.ts';

function perBlock(s: Qcow2State): number {
  return 2 ** s.refcountBlockBits;
}

function blocksExist(s: Qcow2State, first: number, n: number): boolean {
  const b0 = Math.floor(first / perBlock(s));
  const b1 = Math.floor((first + n - 1) / perBlock(s));
  for (let b = b0; b <= b1; b++) {
    if ((s.refcountTable[b] ?? 0) === 0) return false;
  }
  return true;
}

/** Create the refcount blocks for clusters [first, first + n) in one transaction. */
function ensureBlocks(s: Qcow2State, first: number, n: number): void {
  const tx = qcow2TxBegin(s);
  const b0 = Math.floor(first / perBlock(s));
  const b1 = Math.floor((first + n - 1) / perBlock(s));
  for (let b = b0; b <= b1; b++) {
    if ((s.refcountTable[b] ?? 0) === 0) tx.forceBlocks.add(b);
  }
  qcow2TxCommit(s, tx);
}

/** First index of `n` contiguous clusters with refcount 0, scanning from freeClusterIndex. */
function findFreeRun(s: Qcow2State, n: number): number {
  const base = s.freeClusterIndex;
  const limit = base + s.refcountTable.length * perBlock(s) + 2 * n + 16;
  let start = base;
  for (let c = start; c - start < n; c++) {
    assert(c < limit, `qcow2: no run of ${n} free clusters below cluster ${limit}`);
    if (qcow2GetRefcount(s, c) !== 0) start = c + 1;
  }
  return start;
}

/**
 * Allocate contiguous clusters for `bytes` and set their refcount to 1 (written through).
 * Returns the byte offset of the first. The caller must put a barrier between this and any
 * write that makes the clusters reachable. @qemu block/qcow2-refcount.c qcow2_alloc_clusters
 */
export function qcow2AllocClusters(s: Qcow2State, bytes: number): number {
  const n = Math.max(1, sizeToClusters(s, bytes));
  for (let attempt = 0; attempt < 16; attempt++) {
    const first = findFreeRun(s, n);
    if (!blocksExist(s, first, n)) {
      ensureBlocks(s, first, n);
      continue; // the new blocks may occupy clusters of this run: search again
    }
    qcow2UpdateRefcount(s, first, n, 1);
    // As QEMU's free_cluster_index++: everything scanned is skipped from now on, including
    // holes too small for this run, until a free below it lowers the index again.
    s.freeClusterIndex = first + n;
    return first * s.clusterSize;
  }
  throw new AssertionError(`qcow2: could not allocate ${n} clusters after creating refcount blocks 16 times`);
}

/**
 * Add `delta` to the refcounts of clusters [first, first + n), block by block, writing each
 * changed byte range through. A count leaving its range is an operating error (a corrupt image
 * or an overflow); freed clusters lower freeClusterIndex. @qemu update_refcount
 */
export function qcow2UpdateRefcount(s: Qcow2State, first: number, n: number, delta: number): void {
  const per = perBlock(s);
  let c = first;
  const end = first + n;
  while (c < end) {
    const b = Math.floor(c / per);
    const segEnd = Math.min(end, (b + 1) * per);
    const blockOffset = s.refcountTable[b] ?? 0;
    if (blockOffset === 0) {
      if (delta > 0) assert(false, `qcow2: refcount block for cluster ${c} missing after allocation`);
      blockFail(EIO, `qcow2: cluster ${c} is being freed but has no refcount block; the image is corrupt`);
    }
    const block = rbLoad(s, blockOffset);
    const i0 = c - b * per;
    const i1 = segEnd - b * per;
    for (let i = i0; i < i1; i++) {
      const v = rbGet(s, block, i) + delta;
      if (v < 0) blockFail(EIO, `qcow2: refcount of cluster ${b * per + i} would drop below zero; the image is corrupt`);
      if (v > s.refcountMax) blockFail(ERANGE, `qcow2: refcount of cluster ${b * per + i} would exceed ${s.refcountMax}`);
      rbSet(s, block, i, v);
      if (v === 0) {
        const freed = b * per + i;
        cacheDropRange(s, freed * s.clusterSize, s.clusterSize);
        if (freed < s.freeClusterIndex) s.freeClusterIndex = freed;
      }
    }
    const [from, to] = rbByteRange(s, i0, i1);
    tableWriteRange(s, blockOffset, block, from, to);
    c = segEnd;
  }
}

/** Drop one reference from every cluster overlapping [offset, offset + bytes). @qemu qcow2_free_clusters */
export function qcow2FreeClusters(s: Qcow2State, offset: number, bytes: number): void {
  if (bytes <= 0) return;
  const first = Math.floor(offset / s.clusterSize);
  const last = Math.floor((offset + bytes - 1) / s.clusterSize);
  qcow2UpdateRefcount(s, first, last - first + 1, -1);
}

/** Drop the reference an L2 entry holds on its host cluster(s), if any. @qemu qcow2_free_any_cluster */
export function qcow2FreeAnyCluster(s: Qcow2State, hi: number, lo: number): void {
  switch (entryType(hi, lo)) {
    case 'normal':
    case 'zero-alloc':
      qcow2FreeClusters(s, entryOffset(hi, lo), s.clusterSize);
      return;
    case 'compressed': {
      const r = compressedRange(s, hi, lo);
      qcow2FreeClusters(s, r.offset, r.bytes);
      return;
    }
    case 'unallocated':
    case 'zero-plain':
      return;
  }
}

/** Refcount of the cluster holding byte `offset`. */
export function qcow2RefcountAt(s: Qcow2State, offset: number): number {
  return qcow2GetRefcount(s, Math.floor(offset / s.clusterSize));
}
