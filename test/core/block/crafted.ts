// Crafted qcow2 images with one bad header field each, and the message and errno QEMU 7.2
// gives when opening them. Used by qcow2-errors.test.ts and, against real qemu-img, by
// qemu-img.test.ts.
import { EFBIG, EINVAL, ENOTSUP, memFileBytes } from '../../../core/block/index.ts';
import { putU32, putU64 } from '../../../core/block/qcow2-format.ts';
import { memQcow2 } from './support.ts';

/** A fresh 16 MiB image with 64 KiB clusters, its header patched by `patch`. */
export function craftedImage(patch: (b: Uint8Array) => void): Uint8Array {
  const { p, name } = memQcow2(16 << 20);
  const b = memFileBytes(p.files.get(name)!);
  patch(b);
  return b;
}

/** Each case: the patch, QEMU's message, errno. Shared with the qemu-img comparison. */
export const OPEN_ERROR_CASES: Array<{ what: string; patch: (b: Uint8Array) => void; message: string; errno: number }> = [
  { what: 'bad magic', patch: (b) => putU32(b, 0, 0x12345678), message: 'Image is not in qcow2 format', errno: EINVAL },
  { what: 'version 4', patch: (b) => putU32(b, 4, 4), message: 'Unsupported qcow2 version 4', errno: ENOTSUP },
  { what: 'cluster bits 8', patch: (b) => putU32(b, 20, 8), message: 'Unsupported cluster size: 2^8', errno: EINVAL },
  { what: 'cluster bits 22', patch: (b) => putU32(b, 20, 22), message: 'Unsupported cluster size: 2^22', errno: EINVAL },
  { what: 'short header', patch: (b) => putU32(b, 100, 96), message: 'qcow2 header too short', errno: EINVAL },
  { what: 'huge header', patch: (b) => putU32(b, 100, 70000), message: 'qcow2 header exceeds cluster size', errno: EINVAL },
  { what: 'unknown incompatible bits', patch: (b) => putU64(b, 72, 0x60), message: 'Unsupported qcow2 feature(s): Unknown incompatible feature: 60', errno: ENOTSUP },
  { what: 'refcount order 7', patch: (b) => putU32(b, 96, 7), message: 'Reference count entry width too large; may not exceed 64 bits', errno: EINVAL },
  { what: 'no refcount table', patch: (b) => putU32(b, 56, 0), message: 'Image does not contain a reference count table', errno: EINVAL },
  { what: 'unaligned refcount table', patch: (b) => putU64(b, 48, 0x10008), message: 'Reference count table offset invalid', errno: EINVAL },
  { what: 'unaligned snapshot table', patch: (b) => { putU32(b, 60, 1); putU64(b, 64, 0x10008); }, message: 'Snapshot table offset invalid', errno: EINVAL },
  { what: 'too many snapshots', patch: (b) => putU32(b, 60, 70000), message: 'Snapshot table too large', errno: EFBIG },
  { what: 'huge L1', patch: (b) => putU32(b, 36, 0x800000), message: 'Active L1 table too large', errno: EFBIG },
  { what: 'unaligned L1', patch: (b) => putU64(b, 40, 0x30004), message: 'Active L1 table offset invalid', errno: EINVAL },
  { what: 'L1 too small', patch: (b) => { putU64(b, 24, 1 << 30); }, message: 'L1 table is too small', errno: EINVAL },
  { what: 'zlib with compression bit', patch: (b) => putU64(b, 72, 8), message: 'qcow2: Compression type incompatible feature bit must not be set', errno: EINVAL },
  { what: 'unknown compression type', patch: (b) => { b[104] = 5; }, message: 'qcow2: unknown compression type: 5', errno: ENOTSUP },
];

