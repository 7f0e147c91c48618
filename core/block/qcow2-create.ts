// Creating a qcow2 image the way `qemu-img create -f qcow2 FILE SIZE` 7.2 does (qcow2_co_create
// + qcow2_update_header + the initial truncate): version 3, header length 112, the feature name
// table extension, the refcount table in cluster 1, its first block in cluster 2, the L1 table in
// cluster 3 written with exactly l1_size entries. The result is byte for byte what qemu-img
// writes for the same size, cluster size and refcount width (qemu-img.test.ts compares them).

import type { BlockFile } from './block-file.ts';
import { EINVAL, ENOTSUP, blockFail } from './errno.ts';
import {
  DEFAULT_CLUSTER_BITS, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS, QCOW2_FEATURES_7_2, QCOW2_HEADER_SIZE, QCOW_MAGIC,
  putU64, qcow2FeatureTableEncode, qcow2HeaderEncode,
} from './qcow2-format.ts';
import { rbSet, type Qcow2State } from './qcow2-state.ts';

/** qemu-img create -f qcow2 options detvm supports. */
export interface Qcow2CreateOptions {
  /** Virtual size in bytes (rounded up to 512 as qemu-img does). */
  size: number;
  /** Power of two from 512 to 2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** 1, 2, 4, 8, 16 (default), 32 or 64. */
  refcountBits?: number;
}

/**
 * Write a new, empty qcow2 image into `file` (which should be empty). Throws BlockError with
 * QEMU's texts for bad options. @qemu block/qcow2.c qcow2_co_create
 */
export function qcow2Create(file: BlockFile, opts: Qcow2CreateOptions): void {
  const cs = opts.clusterSize ?? 2 ** DEFAULT_CLUSTER_BITS;
  const clusterBits = Math.log2(cs);
  if (!Number.isInteger(clusterBits) || clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    blockFail(EINVAL, 'Cluster size must be a power of two between 512 and 2048k');
  }
  const refcountBits = opts.refcountBits ?? 16;
  const refcountOrder = Math.log2(refcountBits);
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    blockFail(EINVAL, 'Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (!Number.isSafeInteger(opts.size) || opts.size < 0) blockFail(EINVAL, `Invalid image size ${opts.size}`);
  const size = Math.ceil(opts.size / 512) * 512;
  const l2Span = cs * (cs / 8);
  const l1Size = Math.ceil(size / l2Span);
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const perBlock = (cs * 8) / refcountBits;
  if (3 + l1Clusters > perBlock) {
    blockFail(ENOTSUP, `detvm cannot create a ${size}-byte image with ${cs}-byte clusters: its L1 table does not fit the first refcount block`);
  }

  const header = new Uint8Array(cs);
  header.set(qcow2HeaderEncode({
    magic: QCOW_MAGIC, version: 3, backingFileOffset: 0, backingFileSize: 0, clusterBits, size, cryptMethod: 0,
    l1Size, l1TableOffset: l1Size > 0 ? 3 * cs : 0, refcountTableOffset: cs, refcountTableClusters: 1,
    nbSnapshots: 0, snapshotsOffset: 0, incompatibleFeatures: 0n, compatibleFeatures: 0n, autoclearFeatures: 0n,
    refcountOrder, headerLength: QCOW2_HEADER_SIZE, compressionType: 0,
  }));
  // qemu-img 7.2 writes the feature name table only for clusters larger than 4 KiB (checked
  // against its output). The end-of-extensions marker that follows is eight zero bytes.
  if (cs > 4096) header.set(qcow2FeatureTableEncode(QCOW2_FEATURES_7_2), QCOW2_HEADER_SIZE);

  const tables = new Uint8Array(2 * cs);
  putU64(tables, 0, 2 * cs);
  const block = tables.subarray(cs);
  const fake = { refcountOrder, refcountBits, refcountMax: 2 ** refcountBits - 1 } as Qcow2State;
  const used = l1Size > 0 ? 3 + l1Clusters : 3;
  for (let c = 0; c < used; c++) rbSet(fake, block, c, 1);

  file.pwrite(0, header);
  file.pwrite(cs, tables);
  if (l1Size > 0) file.pwrite(3 * cs, new Uint8Array(l1Size * 8));
  file.flush();
}
