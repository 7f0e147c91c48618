// The open qcow2 image (BDRVQcow2State, block/qcow2.h) and its lowest-level access: L1/L2 entry
// decoding, write-through caches of L2 tables and refcount blocks, refcount reads, and the file
// writes with their flush barriers. Invariants: every cached table equals its bytes in the file
// (caches are read-through and write-through, never dirty), so the order of pwrite calls is the
// order of metadata updates; `dirty` is true iff a write happened since the last barrier.

import { assert } from '../util/index.ts';
import type { BlockFile } from './block-file.ts';
import { EIO, blockFail } from './errno.ts';
import { QCOW_OFLAG_COMPRESSED_HI, QCOW_OFLAG_COPIED_HI, QCOW_OFLAG_ZERO_LO, getU32, getU64, putU32, putU64 } from './qcow2-format.ts';

/** One internal snapshot as held in memory. @qemu block/qcow2.h QCowSnapshot */
export interface Qcow2Snapshot {
  l1TableOffset: number;
  l1Size: number;
  idStr: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  vmStateSize: number;
  diskSize: number;
  /** Instruction count when taken; -1 when recorded without icount (or not recorded). */
  icount: number;
  /** Size of all extra data on disk, at least 24 when written by detvm. */
  extraDataSize: number;
  /** Extra data beyond the fields QEMU 7.2 knows, kept to be written back unchanged. */
  unknownExtraData: Uint8Array | null;
}

/** @qemu block/qcow2.h BDRVQcow2State (the parts detvm uses) */
export interface Qcow2State {
  file: BlockFile;
  readOnly: boolean;
  /** cache.no-flush: barriers do not reach the file (QEMU's cache=unsafe). */
  noFlush: boolean;
  version: number;
  clusterBits: number;
  clusterSize: number;
  /** log2 of the entries per L2 table. */
  l2Bits: number;
  l2Size: number;
  /** Virtual disk size in bytes. */
  size: number;
  /** First L1 index past the disk: the vmstate area starts here. */
  l1VmStateIndex: number;
  l1Size: number;
  l1TableOffset: number;
  /** The active L1 table as stored (big-endian entries). */
  l1: Uint8Array;
  refcountOrder: number;
  refcountBits: number;
  /** log2 of the entries per refcount block. */
  refcountBlockBits: number;
  refcountMax: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  /** Refcount block offsets by table index (0: no block). Length = table capacity. */
  refcountTable: number[];
  snapshotsOffset: number;
  /** Bytes of the snapshot table on disk. */
  snapshotsSize: number;
  snapshots: Qcow2Snapshot[];
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  headerLength: number;
  /** Lowest cluster index that may be free. @qemu free_cluster_index */
  freeClusterIndex: number;
  l2Cache: Map<number, Uint8Array>;
  rbCache: Map<number, Uint8Array>;
  cacheMaxEntries: number;
  /** A write happened since the last barrier. */
  dirty: boolean;
  /** The last decompressed cluster (host descriptor key → data), compressed images only. */
  compressedCache: { key: string; data: Uint8Array } | null;
  /** VM state written but not yet in the image (see qcow2BufferVmstate), or null. */
  vmstateBuf: { pos: number; bytes: number; buf: Uint8Array } | null;
}

/** @qemu block/qcow2.h QCow2ClusterType */
export type Qcow2ClusterType = 'unallocated' | 'zero-plain' | 'zero-alloc' | 'normal' | 'compressed';

const TWO32 = 0x1_0000_0000;

/** Host offset bits 9..55 of an L1 or standard L2 entry. @qemu L1E_OFFSET_MASK / L2E_OFFSET_MASK */
export function entryOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
}

/** Classify an L2 entry. @qemu block/qcow2.h qcow2_get_cluster_type */
export function entryType(hi: number, lo: number): Qcow2ClusterType {
  if ((hi & QCOW_OFLAG_COMPRESSED_HI) !== 0) return 'compressed';
  const off = entryOffset(hi, lo);
  if ((lo & QCOW_OFLAG_ZERO_LO) !== 0) return off === 0 ? 'zero-plain' : 'zero-alloc';
  return off === 0 ? 'unallocated' : 'normal';
}

/** Whether an L1 or L2 entry carries QCOW_OFLAG_COPIED (refcount exactly 1). */
export function entryCopied(hi: number): boolean {
  return (hi & QCOW_OFLAG_COPIED_HI) !== 0;
}

/** Store an entry `offset | (copied ? COPIED : 0) | (zero ? ZERO : 0)` at byte `at` of `b`. */
export function entryPut(b: Uint8Array, at: number, offset: number, copied: boolean, zero = false): void {
  putU64(b, at, offset);
  if (copied) putU32(b, at, (getU32(b, at) | QCOW_OFLAG_COPIED_HI) >>> 0);
  if (zero) b[at + 7] = b[at + 7]! | QCOW_OFLAG_ZERO_LO;
}

/**
 * The host byte range of a compressed cluster: its first byte and length (which may cross into
 * the next host cluster). @qemu block/qcow2.c qcow2_parse_compressed_l2_entry
 */
export function compressedRange(s: Qcow2State, hi: number, lo: number): { offset: number; bytes: number } {
  const e = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  const csizeShift = BigInt(62 - (s.clusterBits - 8));
  const csizeMask = (1n << BigInt(s.clusterBits - 8)) - 1n;
  const offset = Number(e & ((1n << csizeShift) - 1n));
  const nbCsectors = Number((e >> csizeShift) & csizeMask) + 1;
  return { offset, bytes: nbCsectors * 512 - (offset & 511) };
}

/** High word of active L1 entry `i`. */
export function l1Hi(s: Qcow2State, i: number): number {
  return getU32(s.l1, 8 * i);
}

/** Low word of active L1 entry `i`. */
export function l1Lo(s: Qcow2State, i: number): number {
  return getU32(s.l1, 8 * i + 4);
}

/** The L2 table offset of active L1 entry `i` (0: none). */
export function l1Offset(s: Qcow2State, i: number): number {
  return i < s.l1Size ? entryOffset(l1Hi(s, i), l1Lo(s, i)) : 0;
}

/** Mark that a write happened; the next barrier flushes. */
function noteWrite(s: Qcow2State): void {
  s.dirty = true;
}

/** Write bytes to the image file. */
export function fileWrite(s: Qcow2State, offset: number, data: Uint8Array): void {
  assert(!s.readOnly, `qcow2 '${s.file.name}': write to a read-only image`);
  s.file.pwrite(offset, data);
  noteWrite(s);
}

/**
 * An ordering barrier: every write issued before it is durable before any write issued after it
 * (a flush of the file, skipped when nothing was written or under cache.no-flush).
 */
export function qcow2Barrier(s: Qcow2State): void {
  if (!s.dirty) return;
  if (!s.noFlush) s.file.flush();
  s.dirty = false;
}

function cacheGet(s: Qcow2State, cache: Map<number, Uint8Array>, offset: number, what: string): Uint8Array {
  const hit = cache.get(offset);
  if (hit) {
    cache.delete(offset); // re-insert: Map order is the LRU order
    cache.set(offset, hit);
    return hit;
  }
  if (offset % s.clusterSize !== 0) {
    blockFail(EIO, `qcow2: ${what} offset 0x${offset.toString(16)} is not aligned to a cluster`);
  }
  const t = new Uint8Array(s.clusterSize);
  s.file.pread(offset, t);
  cache.set(offset, t);
  if (cache.size > s.cacheMaxEntries) cache.delete(cache.keys().next().value!);
  return t;
}

/** The L2 table at `offset`, from the cache or the file. Do not modify it except through l2Write. */
export function l2Load(s: Qcow2State, offset: number): Uint8Array {
  return cacheGet(s, s.l2Cache, offset, 'L2 table');
}

/** Put a table just written to `offset` into the L2 cache. */
export function l2CachePut(s: Qcow2State, offset: number, table: Uint8Array): void {
  s.l2Cache.delete(offset);
  s.l2Cache.set(offset, table);
  if (s.l2Cache.size > s.cacheMaxEntries) s.l2Cache.delete(s.l2Cache.keys().next().value!);
}

/** The refcount block at `offset`. */
export function rbLoad(s: Qcow2State, offset: number): Uint8Array {
  return cacheGet(s, s.rbCache, offset, 'refcount block');
}

/** Write entries [from, to) of a cached table to the file (write-through). */
export function tableWriteRange(s: Qcow2State, tableOffset: number, table: Uint8Array, fromByte: number, toByte: number): void {
  if (toByte <= fromByte) return;
  fileWrite(s, tableOffset + fromByte, table.subarray(fromByte, toByte));
}

/** Forget cached tables in [offset, offset + bytes): the clusters were freed or rewritten. */
export function cacheDropRange(s: Qcow2State, offset: number, bytes: number): void {
  const first = Math.floor(offset / s.clusterSize);
  const last = Math.floor((offset + bytes - 1) / s.clusterSize);
  for (let c = first; c <= last; c++) {
    s.l2Cache.delete(c * s.clusterSize);
    s.rbCache.delete(c * s.clusterSize);
  }
}

/** Refcount entry `idx` of a block. Widths below a byte count from bit 0 (LSB first). */
export function rbGet(s: Qcow2State, block: Uint8Array, idx: number): number {
  switch (s.refcountOrder) {
    case 4:
      return (block[2 * idx]! << 8) | block[2 * idx + 1]!;
    case 3:
      return block[idx]!;
    case 5:
      return getU32(block, 4 * idx);
    case 6:
      return getU64(block, 8 * idx);
    default: {
      const bits = s.refcountBits;
      const bit = idx * bits;
      return (block[bit >> 3]! >> (bit & 7)) & ((1 << bits) - 1);
    }
  }
}

/** Set refcount entry `idx` of a block (in memory; the caller writes it through). */
export function rbSet(s: Qcow2State, block: Uint8Array, idx: number, v: number): void {
  assert(v >= 0 && v <= s.refcountMax, `refcount ${v} out of range for ${s.refcountBits}-bit refcounts`);
  switch (s.refcountOrder) {
    case 4:
      block[2 * idx] = v >>> 8;
      block[2 * idx + 1] = v & 0xff;
      return;
    case 3:
      block[idx] = v;
      return;
    case 5:
      putU32(block, 4 * idx, v);
      return;
    case 6:
      putU64(block, 8 * idx, v);
      return;
    default: {
      const bits = s.refcountBits;
      const bit = idx * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      block[bit >> 3] = (block[bit >> 3]! & ~mask) | ((v << (bit & 7)) & mask);
    }
  }
}

/** Byte range [from, to) of a block holding entries [i, j). */
export function rbByteRange(s: Qcow2State, i: number, j: number): [number, number] {
  return [(i * s.refcountBits) >> 3, Math.ceil((j * s.refcountBits) / 8)];
}

/** The refcount of host cluster `c` (0 for clusters no block describes). @qemu qcow2_get_refcount */
export function qcow2GetRefcount(s: Qcow2State, c: number): number {
  const ti = Math.floor(c / 2 ** s.refcountBlockBits);
  if (ti >= s.refcountTable.length) return 0;
  const blockOffset = s.refcountTable[ti]!;
  if (blockOffset === 0) return 0;
  return rbGet(s, rbLoad(s, blockOffset), c - ti * 2 ** s.refcountBlockBits);
}

/** Number of clusters needed for `bytes`. @qemu size_to_clusters */
export function sizeToClusters(s: Qcow2State, bytes: number): number {
  return Math.ceil(bytes / s.clusterSize);
}

/** The guest offset where the vmstate area begins. @qemu qcow2_vm_state_offset */
export function qcow2VmStateOffset(s: Qcow2State): number {
  return s.l1VmStateIndex * 2 ** (s.clusterBits + s.l2Bits);
}
