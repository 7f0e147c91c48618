// Opening and closing a qcow2 image (block/qcow2.c qcow2_do_open) with QEMU 7.2's checks and
// error texts in its order, the vmstate entry points and query-block's format-specific info.
// detvm refuses what it does not implement (backing files, encryption, external data files,
// extended L2 entries, zstd compression) at open time with QEMU's texts where QEMU has them.

import type { BlockFile } from './block-file.ts';
import { EACCES, EFBIG, EINVAL, EIO, ENOSYS, ENOTSUP, blockFail } from './errno.ts';
import {
  DETVM_INCOMPAT_MASK, HDR_AUTOCLEAR, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS, QCOW2_EXT_MAGIC_FEATURE_TABLE,
  QCOW2_HEADER_SIZE, QCOW2_INCOMPAT_COMPRESSION, QCOW2_INCOMPAT_CORRUPT, QCOW2_INCOMPAT_DIRTY, QCOW_MAGIC,
  QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_SNAPSHOTS, QCOW2_COMPAT_LAZY_REFCOUNTS, getU64,
  putU64Big, qcow2ExtensionsDecode, qcow2FeatureTableDecode, qcow2HeaderDecode, qcow2UnsupportedFeatureText,
  type Qcow2Header,
} from './qcow2-format.ts';
import { type Qcow2State, fileWrite, qcow2Barrier, qcow2VmStateOffset } from './qcow2-state.ts';
import { SNAPSHOT_HEADER_SIZE, qcow2SnapshotTableRead } from './qcow2-snapshot-table.ts';
import { qcow2Check } from './qcow2-check.ts';
import { qcow2BufferVmstate, qcow2FlushVmstate, qcow2Pread } from './qcow2-cluster.ts';

export interface Qcow2OpenOptions {
  readOnly: boolean;
  /** cache.no-flush (cache=unsafe): flush barriers do not reach the file. */
  noFlush?: boolean;
}

/** Largest table that fits: QEMU's qcow2_validate_table. */
function validateTable(s: { clusterSize: number }, offset: number, entries: number, entryLen: number, maxBytes: number, name: string): void {
  if (entries > Math.floor(maxBytes / entryLen)) blockFail(EFBIG, `${name} too large`);
  if (!Number.isSafeInteger(offset + entries * entryLen) || offset % s.clusterSize !== 0) {
    blockFail(EINVAL, `${name} offset invalid`);
  }
}

function checkFeatures(h: Qcow2Header, cluster0: Uint8Array, extEnd: number, readOnly: boolean): void {
  const compression = h.headerLength > 104 ? h.compressionType : 0;
  if (compression > 1) blockFail(ENOTSUP, `qcow2: unknown compression type: ${compression}`);
  const bit = (h.incompatibleFeatures & QCOW2_INCOMPAT_COMPRESSION) !== 0n;
  if (compression === 0 && bit) blockFail(EINVAL, 'qcow2: Compression type incompatible feature bit must not be set');
  if (compression !== 0 && !bit) blockFail(EINVAL, 'qcow2: Compression type incompatible feature bit must be set');
  const unsupported = h.incompatibleFeatures & ~DETVM_INCOMPAT_MASK;
  if (unsupported !== 0n) {
    const exts = qcow2ExtensionsDecode(cluster0, h.headerLength, extEnd);
    const table = Array.isArray(exts) ? exts.find((e) => e.magic === QCOW2_EXT_MAGIC_FEATURE_TABLE) : undefined;
    blockFail(ENOTSUP, qcow2UnsupportedFeatureText(table ? qcow2FeatureTableDecode(table.data) : [], unsupported));
  }
  if ((h.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n && !readOnly) {
    blockFail(EACCES, 'qcow2: Image is corrupt; cannot be opened read/write');
  }
  if (h.refcountOrder > 6) blockFail(EINVAL, 'Reference count entry width too large; may not exceed 64 bits');
  if (h.cryptMethod === 1) blockFail(ENOSYS, 'Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators');
  if (h.cryptMethod !== 0) blockFail(ENOTSUP, 'detvm does not support encrypted qcow2 images');
}

/** Decode and validate the header in QEMU's order; returns it with the extensions' end offset. */
function readHeader(file: BlockFile, readOnly: boolean): { h: Qcow2Header; cluster0: Uint8Array } {
  const first = new Uint8Array(QCOW2_HEADER_SIZE);
  file.pread(0, first);
  const h = qcow2HeaderDecode(first);
  if (h.magic !== QCOW_MAGIC) blockFail(EINVAL, 'Image is not in qcow2 format');
  if (h.version < 2 || h.version > 3) blockFail(ENOTSUP, `Unsupported qcow2 version ${h.version}`);
  if (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS) {
    blockFail(EINVAL, `Unsupported cluster size: 2^${h.clusterBits}`);
  }
  const cs = 2 ** h.clusterBits;
  if (h.version >= 3 && h.headerLength < 104) blockFail(EINVAL, 'qcow2 header too short');
  if (h.headerLength > cs) blockFail(EINVAL, 'qcow2 header exceeds cluster size');
  if (h.backingFileOffset > cs) blockFail(EINVAL, 'Invalid backing file offset');
  const cluster0 = new Uint8Array(cs);
  file.pread(0, cluster0);
  const extEnd = h.backingFileOffset !== 0 ? h.backingFileOffset : cs;
  checkFeatures(h, cluster0, extEnd, readOnly);
  if (h.refcountTableClusters === 0) blockFail(EINVAL, 'Image does not contain a reference count table');
  validateTable({ clusterSize: cs }, h.refcountTableOffset, h.refcountTableClusters, cs, QCOW_MAX_REFTABLE_SIZE, 'Reference count table');
  validateTable({ clusterSize: cs }, h.snapshotsOffset, h.nbSnapshots, SNAPSHOT_HEADER_SIZE, SNAPSHOT_HEADER_SIZE * QCOW_MAX_SNAPSHOTS, 'Snapshot table');
  validateTable({ clusterSize: cs }, h.l1TableOffset, h.l1Size, 8, QCOW_MAX_L1_SIZE, 'Active L1 table');
  if (!Number.isSafeInteger(h.size)) blockFail(EFBIG, 'Image is too big');
  const exts = qcow2ExtensionsDecode(cluster0, h.headerLength, extEnd);
  if (typeof exts === 'string') blockFail(EINVAL, exts);
  if (h.backingFileOffset !== 0) {
    const name = new TextDecoder().decode(cluster0.subarray(h.backingFileOffset, h.backingFileOffset + h.backingFileSize));
    blockFail(ENOTSUP, `detvm does not support backing files (the image's backing file is '${name}')`);
  }
  return { h, cluster0 };
}

/**
 * Open the qcow2 image in `file`. Throws BlockError with QEMU's message on a bad image. A dirty
 * image opened read-write is repaired first, as QEMU does.
 * @qemu block/qcow2.c qcow2_do_open
 */
export function qcow2Open(file: BlockFile, opts: Qcow2OpenOptions): Qcow2State {
  const { h } = readHeader(file, opts.readOnly);
  const cs = 2 ** h.clusterBits;
  const l2Bits = h.clusterBits - 3;
  const l1VmStateIndex = Math.ceil(h.size / 2 ** (h.clusterBits + l2Bits));
  if (l1VmStateIndex > 0x7fffffff) blockFail(EFBIG, 'Image is too big');
  if (h.l1Size < l1VmStateIndex) blockFail(EINVAL, 'L1 table is too small');
  const l1 = new Uint8Array(h.l1Size * 8);
  file.pread(h.l1TableOffset, l1);
  const rt = new Uint8Array(h.refcountTableClusters * cs);
  file.pread(h.refcountTableOffset, rt);
  const refcountTable: number[] = [];
  for (let i = 0; i < rt.length / 8; i++) refcountTable.push(getU64(rt, 8 * i));
  const refcountBits = 2 ** h.refcountOrder;
  const s: Qcow2State = {
    file, readOnly: opts.readOnly, noFlush: opts.noFlush ?? false, version: h.version,
    clusterBits: h.clusterBits, clusterSize: cs, l2Bits, l2Size: cs / 8, size: h.size, l1VmStateIndex,
    l1Size: h.l1Size, l1TableOffset: h.l1TableOffset, l1, refcountOrder: h.refcountOrder, refcountBits,
    refcountBlockBits: h.clusterBits + 3 - h.refcountOrder,
    refcountMax: refcountBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** refcountBits - 1,
    refcountTableOffset: h.refcountTableOffset, refcountTableClusters: h.refcountTableClusters, refcountTable,
    snapshotsOffset: h.snapshotsOffset, snapshotsSize: 0, snapshots: [],
    incompatibleFeatures: h.incompatibleFeatures, compatibleFeatures: h.compatibleFeatures,
    autoclearFeatures: h.autoclearFeatures, headerLength: h.headerLength, freeClusterIndex: 0,
    l2Cache: new Map(), rbCache: new Map(), cacheMaxEntries: Math.max(16, Math.floor((32 * 1024 * 1024) / cs)),
    dirty: false, compressedCache: null, vmstateBuf: null,
  };
  const t = qcow2SnapshotTableRead(file, h.snapshotsOffset, h.nbSnapshots, h.size);
  s.snapshots = t.snapshots;
  s.snapshotsSize = t.size;
  if (!opts.readOnly && s.autoclearFeatures !== 0n) {
    // No autoclear feature is implemented (persistent bitmaps, raw data files): clear the bits
    // before writing, as the format requires of programs that do not know them.
    s.autoclearFeatures = 0n;
    const b = new Uint8Array(8);
    putU64Big(b, 0, 0n);
    fileWrite(s, HDR_AUTOCLEAR, b);
    qcow2Barrier(s);
  }
  if (!opts.readOnly && (s.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) !== 0n) {
    const r = qcow2Check(s, 'all');
    if (r.checkErrors > 0 || r.corruptions > 0) blockFail(EIO, 'Could not repair dirty image: Input/output error');
  }
  return s;
}

/** Write out buffered VM state, flush and release the file. */
export function qcow2Close(s: Qcow2State): void {
  if (!s.readOnly) {
    qcow2FlushVmstate(s);
    qcow2Barrier(s);
  }
  s.file.close();
}

/**
 * Write `data` at `pos` of the vmstate area. Contiguous writes are gathered (copied) and reach
 * the image as one allocation at the next other operation on the image, the latest when the
 * snapshot that owns them is created: savevm in 32 KiB chunks then costs a handful of flushes
 * instead of one per chunk. Until then nothing refers to them, so a crash loses only them.
 * @qemu qcow2_save_vmstate
 */
export function qcow2SaveVmstate(s: Qcow2State, pos: number, data: Uint8Array): void {
  qcow2BufferVmstate(s, pos, data);
}

/** Read `buf.length` bytes at `pos` of the vmstate area. @qemu qcow2_load_vmstate */
export function qcow2LoadVmstate(s: Qcow2State, pos: number, buf: Uint8Array): void {
  qcow2Pread(s, qcow2VmStateOffset(s) + pos, buf);
}

/** The format-specific part of query-block's ImageInfo. @qemu qcow2_get_specific_info */
export function qcow2SpecificInfo(s: Qcow2State): Record<string, string | number | boolean> {
  if (s.version === 2) return { compat: '0.10', 'refcount-bits': s.refcountBits };
  return {
    compat: '1.1',
    'compression-type': 'zlib',
    'lazy-refcounts': (s.compatibleFeatures & QCOW2_COMPAT_LAZY_REFCOUNTS) !== 0n,
    'refcount-bits': s.refcountBits,
    corrupt: (s.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n,
    'extended-l2': false,
  };
}
