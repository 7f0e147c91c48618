// The qcow2 snapshot table codec (block/qcow2-snapshot.c qcow2_do_read_snapshots and
// qcow2_write_snapshots). Each entry: a 40-byte header (QCowSnapshotHeader), extra data
// (QCowSnapshotExtraData: vm_state_size_large, disk_size, icount: 24 bytes as QEMU 7.2 writes,
// plus any unknown extra data kept verbatim), the id string and the name, entries aligned to 8.
// Strings are stored as UTF-8 without a terminator. icount -1 (all ones) means "none".

import { EFBIG, blockFail } from './errno.ts';
import {
  QCOW_MAX_SNAPSHOTS_SIZE, QCOW_MAX_SNAPSHOT_EXTRA_DATA, getU16, getU32, getU64, putU16, putU32, putU64,
} from './qcow2-format.ts';
import type { Qcow2Snapshot } from './qcow2-state.ts';
import type { BlockFile } from './block-file.ts';

/** sizeof(QCowSnapshotHeader). */
export const SNAPSHOT_HEADER_SIZE = 40;
/** sizeof(QCowSnapshotExtraData) in 7.2 (vm_state_size_large, disk_size, icount). */
export const SNAPSHOT_EXTRA_SIZE = 24;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function isAllOnes(b: Uint8Array, off: number): boolean {
  return getU32(b, off) === 0xffffffff && getU32(b, off + 4) === 0xffffffff;
}

/**
 * Read `count` entries starting at `offset`. `diskSize` is the image size used for entries
 * without a disk_size field. Returns the snapshots and the table's byte length.
 * @qemu block/qcow2-snapshot.c qcow2_do_read_snapshots (repair = false)
 */
export function qcow2SnapshotTableRead(file: BlockFile, offset: number, count: number, diskSize: number): { snapshots: Qcow2Snapshot[]; size: number } {
  const out: Qcow2Snapshot[] = [];
  let off = offset;
  for (let i = 0; i < count; i++) {
    off = Math.ceil(off / 8) * 8;
    const h = new Uint8Array(SNAPSHOT_HEADER_SIZE);
    file.pread(off, h);
    off += SNAPSHOT_HEADER_SIZE;
    const extraDataSize = getU32(h, 36);
    if (extraDataSize > QCOW_MAX_SNAPSHOT_EXTRA_DATA) {
      blockFail(EFBIG, `Too much extra metadata in snapshot table entry ${i}`);
    }
    const extra = new Uint8Array(extraDataSize);
    file.pread(off, extra);
    off += extraDataSize;
    const idLen = getU16(h, 12);
    const nameLen = getU16(h, 14);
    const strs = new Uint8Array(idLen + nameLen);
    file.pread(off, strs);
    off += idLen + nameLen;
    if (off - offset > QCOW_MAX_SNAPSHOTS_SIZE) blockFail(EFBIG, 'Snapshot table is too big');
    out.push({
      l1TableOffset: getU64(h, 0),
      l1Size: getU32(h, 8),
      idStr: utf8d.decode(strs.subarray(0, idLen)),
      name: utf8d.decode(strs.subarray(idLen)),
      dateSec: getU32(h, 16),
      dateNsec: getU32(h, 20),
      vmClockNsec: getU64(h, 24),
      vmStateSize: extraDataSize >= 8 ? getU64(extra, 0) : getU32(h, 32),
      diskSize: extraDataSize >= 16 ? getU64(extra, 8) : diskSize,
      icount: extraDataSize >= 24 && !isAllOnes(extra, 16) ? getU64(extra, 16) : -1,
      extraDataSize,
      unknownExtraData: extraDataSize > SNAPSHOT_EXTRA_SIZE ? extra.slice(SNAPSHOT_EXTRA_SIZE) : null,
    });
  }
  return { snapshots: out, size: off - offset };
}

/** Encode the whole table (no trailing padding, as QEMU sizes it). @qemu qcow2_write_snapshots */
export function qcow2SnapshotTableEncode(snapshots: readonly Qcow2Snapshot[]): Uint8Array {
  const parts = snapshots.map((sn) => ({ sn, id: utf8.encode(sn.idStr), name: utf8.encode(sn.name) }));
  let size = 0;
  for (const p of parts) {
    size = Math.ceil(size / 8) * 8;
    size += SNAPSHOT_HEADER_SIZE + Math.max(SNAPSHOT_EXTRA_SIZE, p.sn.extraDataSize) + p.id.length + p.name.length;
  }
  if (size > QCOW_MAX_SNAPSHOTS_SIZE) blockFail(EFBIG, 'Snapshot table is too big');
  const b = new Uint8Array(size);
  let off = 0;
  for (const { sn, id, name } of parts) {
    if (id.length > 0xffff || name.length > 0xffff) blockFail(EFBIG, `snapshot id or name longer than 65535 bytes`);
    off = Math.ceil(off / 8) * 8;
    const extraSize = Math.max(SNAPSHOT_EXTRA_SIZE, sn.extraDataSize);
    putU64(b, off, sn.l1TableOffset);
    putU32(b, off + 8, sn.l1Size);
    putU16(b, off + 12, id.length);
    putU16(b, off + 14, name.length);
    putU32(b, off + 16, sn.dateSec);
    putU32(b, off + 20, sn.dateNsec);
    putU64(b, off + 24, sn.vmClockNsec);
    // A VM state too big for 32 bits reads as disk-only to old readers rather than truncated.
    putU32(b, off + 32, sn.vmStateSize <= 0xffffffff ? sn.vmStateSize : 0);
    putU32(b, off + 36, extraSize);
    off += SNAPSHOT_HEADER_SIZE;
    putU64(b, off, sn.vmStateSize);
    putU64(b, off + 8, sn.diskSize);
    if (sn.icount < 0) b.fill(0xff, off + 16, off + 24);
    else putU64(b, off + 16, sn.icount);
    if (sn.unknownExtraData) b.set(sn.unknownExtraData.subarray(0, extraSize - SNAPSHOT_EXTRA_SIZE), off + SNAPSHOT_EXTRA_SIZE);
    off += extraSize;
    b.set(id, off);
    off += id.length;
    b.set(name, off);
    off += name.length;
  }
  return b;
}
