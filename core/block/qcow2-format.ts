// The qcow2 on-disk format (docs/interop/qcow2.txt, block/qcow2.h): constants, big-endian field
// access, the header codec and the header extensions qemu-img writes (the feature name table).
// Pure functions over bytes; nothing here touches a file. All multi-byte fields are big-endian.
// 64-bit fields are read as JS numbers: offsets and sizes above 2^53 are rejected where parsed.

import { EFBIG, blockFail } from './errno.ts';

export const QCOW_MAGIC = 0x514649fb; // "QFI\xfb"

export const QCOW2_INCOMPAT_DIRTY = 1n << 0n;
export const QCOW2_INCOMPAT_CORRUPT = 1n << 1n;
export const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
export const QCOW2_INCOMPAT_COMPRESSION = 1n << 3n;
export const QCOW2_INCOMPAT_EXTL2 = 1n << 4n;
/** Incompatible features QEMU 7.2 knows. @qemu block/qcow2.h QCOW2_INCOMPAT_MASK */
export const QCOW2_INCOMPAT_MASK = 0x1fn;
/** The ones detvm implements: dirty and corrupt (the rest are refused at open). */
export const DETVM_INCOMPAT_MASK = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
export const QCOW2_COMPAT_LAZY_REFCOUNTS = 1n << 0n;
export const QCOW2_AUTOCLEAR_BITMAPS = 1n << 0n;
export const QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
export const DEFAULT_CLUSTER_BITS = 16;
export const QCOW_MAX_REFTABLE_SIZE = 8 * 1024 * 1024;
export const QCOW_MAX_L1_SIZE = 32 * 1024 * 1024;
export const QCOW_MAX_SNAPSHOTS = 65536;
export const QCOW_MAX_SNAPSHOT_EXTRA_DATA = 1024;
export const QCOW_MAX_SNAPSHOTS_SIZE = 1024 * QCOW_MAX_SNAPSHOTS;
export const QCOW_CRYPT_NONE = 0;

export const QCOW2_EXT_MAGIC_END = 0;
export const QCOW2_EXT_MAGIC_BACKING_FORMAT = 0xe2792aca;
export const QCOW2_EXT_MAGIC_FEATURE_TABLE = 0x6803f857;
export const QCOW2_EXT_MAGIC_CRYPTO_HEADER = 0x0537be77;
export const QCOW2_EXT_MAGIC_BITMAPS = 0x23852875;
export const QCOW2_EXT_MAGIC_DATA_FILE = 0x44415441;

/** sizeof(QCowHeader) in 7.2: the v3 fields, compression_type and padding to 8. */
export const QCOW2_HEADER_SIZE = 112;
export const QCOW2_V2_HEADER_SIZE = 72;
/** Byte offsets of header fields. */
export const HDR_L1_SIZE = 36;
export const HDR_INCOMPAT = 72;
export const HDR_AUTOCLEAR = 88;
/**
 * The header bytes 36..71 hold l1_size, l1_table_offset, refcount_table_offset,
 * refcount_table_clusters, nb_snapshots and snapshots_offset: every pointer that makes metadata
 * reachable. They share the first 512-byte sector, so one write switches them all atomically.
 */
export const HDR_COMMIT_OFFSET = 36;
export const HDR_COMMIT_LENGTH = 36;

/** L1/L2 entry flags (in the high word of the 64-bit entry) and masks. */
export const QCOW_OFLAG_COPIED_HI = 0x80000000;
export const QCOW_OFLAG_COMPRESSED_HI = 0x40000000;
export const QCOW_OFLAG_ZERO_LO = 1;

const TWO32 = 0x1_0000_0000;

/** Big-endian 16-bit field. */
export function getU16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

/** Big-endian 32-bit field. */
export function getU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** A 64-bit field as a number (exact below 2^53; larger values are approximate). */
export function getU64(b: Uint8Array, off: number): number {
  return getU32(b, off) * TWO32 + getU32(b, off + 4);
}

/** A 64-bit field that must be a safe integer (an offset or size); otherwise EFBIG with `what`. */
export function getU64Safe(b: Uint8Array, off: number, what: string): number {
  const v = getU64(b, off);
  if (!Number.isSafeInteger(v)) blockFail(EFBIG, `${what} too large`);
  return v;
}

/** A 64-bit field exactly, as a bigint (feature masks). */
export function getU64Big(b: Uint8Array, off: number): bigint {
  return (BigInt(getU32(b, off)) << 32n) | BigInt(getU32(b, off + 4));
}

/** Store a big-endian 16-bit field. */
export function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

/** Store a big-endian 32-bit field. */
export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** Store a non-negative safe integer as a 64-bit field. */
export function putU64(b: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  putU32(b, off, hi);
  putU32(b, off + 4, v - hi * TWO32);
}

/** Store a 64-bit field from a bigint. */
export function putU64Big(b: Uint8Array, off: number, v: bigint): void {
  putU32(b, off, Number((v >> 32n) & 0xffffffffn));
  putU32(b, off + 4, Number(v & 0xffffffffn));
}

/** The decoded header. @qemu block/qcow2.h QCowHeader */
export interface Qcow2Header {
  magic: number;
  version: number;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

/**
 * Decode the first `QCOW2_HEADER_SIZE` bytes. Version 2 images get the v3 fields' defaults, as
 * qcow2_do_open does. No validation beyond decoding: the caller checks values in QEMU's order.
 */
export function qcow2HeaderDecode(b: Uint8Array): Qcow2Header {
  const version = getU32(b, 4);
  const v3 = version >= 3;
  const headerLength = v3 ? getU32(b, 100) : QCOW2_V2_HEADER_SIZE;
  return {
    magic: getU32(b, 0),
    version,
    backingFileOffset: getU64(b, 8),
    backingFileSize: getU32(b, 16),
    clusterBits: getU32(b, 20),
    size: getU64(b, 24),
    cryptMethod: getU32(b, 32),
    l1Size: getU32(b, 36),
    l1TableOffset: getU64(b, 40),
    refcountTableOffset: getU64(b, 48),
    refcountTableClusters: getU32(b, 56),
    nbSnapshots: getU32(b, 60),
    snapshotsOffset: getU64(b, 64),
    incompatibleFeatures: v3 ? getU64Big(b, 72) : 0n,
    compatibleFeatures: v3 ? getU64Big(b, 80) : 0n,
    autoclearFeatures: v3 ? getU64Big(b, 88) : 0n,
    refcountOrder: v3 ? getU32(b, 96) : 4,
    headerLength,
    compressionType: v3 && headerLength > 104 ? b[104]! : 0,
  };
}

/** Encode a v3 header (QCOW2_HEADER_SIZE bytes). */
export function qcow2HeaderEncode(h: Qcow2Header): Uint8Array {
  const b = new Uint8Array(QCOW2_HEADER_SIZE);
  putU32(b, 0, h.magic);
  putU32(b, 4, h.version);
  putU64(b, 8, h.backingFileOffset);
  putU32(b, 16, h.backingFileSize);
  putU32(b, 20, h.clusterBits);
  putU64(b, 24, h.size);
  putU32(b, 32, h.cryptMethod);
  b.set(qcow2CommitFieldsEncode(h), HDR_COMMIT_OFFSET); // bytes 36..71
  putU64Big(b, 72, h.incompatibleFeatures);
  putU64Big(b, 80, h.compatibleFeatures);
  putU64Big(b, 88, h.autoclearFeatures);
  putU32(b, 96, h.refcountOrder);
  putU32(b, 100, h.headerLength);
  b[104] = h.compressionType;
  return b;
}

/** The pointer fields of the commit range (bytes 36..71). */
export interface Qcow2CommitFields {
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
}

/** Encode the commit range: written with one pwrite at HDR_COMMIT_OFFSET. */
export function qcow2CommitFieldsEncode(f: Qcow2CommitFields): Uint8Array {
  const b = new Uint8Array(HDR_COMMIT_LENGTH);
  putU32(b, 0, f.l1Size);
  putU64(b, 4, f.l1TableOffset);
  putU64(b, 12, f.refcountTableOffset);
  putU32(b, 20, f.refcountTableClusters);
  putU32(b, 24, f.nbSnapshots);
  putU64(b, 28, f.snapshotsOffset);
  return b;
}

/** Feature table entry types. */
export const QCOW2_FEAT_TYPE_INCOMPATIBLE = 0;
export const QCOW2_FEAT_TYPE_COMPATIBLE = 1;
export const QCOW2_FEAT_TYPE_AUTOCLEAR = 2;

export interface Qcow2Feature {
  type: number;
  bit: number;
  name: string;
}

/** The feature name table qemu-img 7.2 writes, in its order. @qemu block/qcow2.c qcow2_update_header */
export const QCOW2_FEATURES_7_2: readonly Qcow2Feature[] = [
  { type: QCOW2_FEAT_TYPE_INCOMPATIBLE, bit: 0, name: 'dirty bit' },
  { type: QCOW2_FEAT_TYPE_INCOMPATIBLE, bit: 1, name: 'corrupt bit' },
  { type: QCOW2_FEAT_TYPE_INCOMPATIBLE, bit: 2, name: 'external data file' },
  { type: QCOW2_FEAT_TYPE_INCOMPATIBLE, bit: 3, name: 'compression type' },
  { type: QCOW2_FEAT_TYPE_INCOMPATIBLE, bit: 4, name: 'extended L2 entries' },
  { type: QCOW2_FEAT_TYPE_COMPATIBLE, bit: 0, name: 'lazy refcounts' },
  { type: QCOW2_FEAT_TYPE_AUTOCLEAR, bit: 0, name: 'bitmaps' },
  { type: QCOW2_FEAT_TYPE_AUTOCLEAR, bit: 1, name: 'raw external data' },
];

const FEATURE_ENTRY_SIZE = 48;

/** Encode a feature name table extension (header + data + padding to 8). */
export function qcow2FeatureTableEncode(features: readonly Qcow2Feature[]): Uint8Array {
  const len = features.length * FEATURE_ENTRY_SIZE;
  const b = new Uint8Array(8 + ((len + 7) & ~7));
  putU32(b, 0, QCOW2_EXT_MAGIC_FEATURE_TABLE);
  putU32(b, 4, len);
  features.forEach((f, i) => {
    const o = 8 + i * FEATURE_ENTRY_SIZE;
    b[o] = f.type;
    b[o + 1] = f.bit;
    for (let j = 0; j < f.name.length && j < 46; j++) b[o + 2 + j] = f.name.charCodeAt(j);
  });
  return b;
}

/** Decode a feature name table's data. */
export function qcow2FeatureTableDecode(data: Uint8Array): Qcow2Feature[] {
  const out: Qcow2Feature[] = [];
  for (let o = 0; o + FEATURE_ENTRY_SIZE <= data.length; o += FEATURE_ENTRY_SIZE) {
    let name = '';
    for (let j = 0; j < 46 && data[o + 2 + j] !== 0; j++) name += String.fromCharCode(data[o + 2 + j]!);
    out.push({ type: data[o]!, bit: data[o + 1]!, name });
  }
  return out;
}

/** One header extension as stored after the header. */
export interface Qcow2Extension {
  magic: number;
  offset: number;
  data: Uint8Array;
}

/**
 * Walk the header extensions in `cluster0` from `start` to `end`. Stops at the end marker. A
 * length running past `end` is QEMU's "Header extension too large".
 * @qemu block/qcow2.c qcow2_read_extensions
 */
export function qcow2ExtensionsDecode(cluster0: Uint8Array, start: number, end: number): Qcow2Extension[] | string {
  const out: Qcow2Extension[] = [];
  let off = start;
  for (let n = 0; off < end && n < 1024; n++) {
    if (off + 8 > end) return 'Header extension too large';
    const magic = getU32(cluster0, off);
    const len = getU32(cluster0, off + 4);
    off += 8;
    if (len > end - off) return 'Header extension too large';
    if (magic === QCOW2_EXT_MAGIC_END) return out;
    out.push({ magic, offset: off, data: cluster0.subarray(off, off + len) });
    off += (len + 7) & ~7;
  }
  return out;
}

/**
 * The text of an unsupported incompatible feature set, naming bits from the image's feature
 * table. @qemu block/qcow2.c report_unsupported_feature
 */
export function qcow2UnsupportedFeatureText(table: readonly Qcow2Feature[], mask: bigint): string {
  const names: string[] = [];
  let rest = mask;
  for (const f of table) {
    if (f.name === '') break;
    if (f.type !== QCOW2_FEAT_TYPE_INCOMPATIBLE) continue;
    const bit = 1n << BigInt(f.bit);
    if ((rest & bit) !== 0n) {
      names.push(f.name.slice(0, 46));
      rest &= ~bit;
    }
  }
  if (rest !== 0n) names.push(`Unknown incompatible feature: ${rest.toString(16)}`);
  return `Unsupported qcow2 feature(s): ${names.join(', ')}`;
}
