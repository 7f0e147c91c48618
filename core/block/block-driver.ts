// Block drivers (QEMU's BlockDriver tables): 'file' (the protocol node over a BlockFile, as
// file-posix), 'raw' (format node passing through to its file child) and 'qcow2'. A driver is a
// constant table of functions over the node; the node's driver state is a tagged union.
// All functions are synchronous and throw BlockError on operating errors.

import type { BlockFile } from './block-file.ts';
import { ENOTSUP, EPERM, blockFail } from './errno.ts';
import type { Qcow2State } from './qcow2-state.ts';
import { qcow2LoadVmstate, qcow2SaveVmstate, qcow2SpecificInfo } from './qcow2.ts';
import { qcow2FlushVmstate, qcow2Pread, qcow2Pwrite } from './qcow2-cluster.ts';
import { qcow2ZeroClusters } from './qcow2-zero.ts';
import { qcow2Barrier } from './qcow2-state.ts';
import {
  type QEMUSnapshotInfo, qcow2SnapshotCreate, qcow2SnapshotDelete, qcow2SnapshotGoto, qcow2SnapshotList,
  qcow2SnapshotLoadVmstate,
} from './qcow2-snapshot.ts';
import type { BlockDriverState } from './block.ts';

/** A node's driver state. */
export type BdsOpaque =
  | { kind: 'file'; file: BlockFile }
  | { kind: 'raw' }
  | { kind: 'qcow2'; s: Qcow2State };

/** Internal snapshot support (qcow2). @qemu bdrv_snapshot_* driver hooks */
export interface SnapshotOps {
  create(bs: BlockDriverState, info: QEMUSnapshotInfo): string;
  goto(bs: BlockDriverState, idOrName: string): void;
  delete(bs: BlockDriverState, id: string | null, name: string | null): void;
  list(bs: BlockDriverState): QEMUSnapshotInfo[];
  /** Read a snapshot's VM state without going to it. */
  loadVmstate(bs: BlockDriverState, idOrName: string, pos: number, buf: Uint8Array): void;
}

/** @qemu include/block/block_int-common.h BlockDriver (the parts detvm uses) */
export interface BlockDriver {
  formatName: 'file' | 'raw' | 'qcow2';
  /** Length in bytes seen by the node's users. */
  getLength(bs: BlockDriverState): number;
  pread(bs: BlockDriverState, offset: number, buf: Uint8Array): void;
  pwrite(bs: BlockDriverState, offset: number, data: Uint8Array): void;
  /** Zero [offset, offset + bytes); `mayUnmap` lets the driver deallocate. */
  pwriteZeroes(bs: BlockDriverState, offset: number, bytes: number, mayUnmap: boolean): void;
  pdiscard(bs: BlockDriverState, offset: number, bytes: number): void;
  flush(bs: BlockDriverState): void;
  close(bs: BlockDriverState): void;
  snapshots: SnapshotOps | null;
  /** The vmstate area (qcow2 only). @qemu bdrv_save_vmstate / bdrv_load_vmstate */
  saveVmstate: ((bs: BlockDriverState, pos: number, data: Uint8Array) => void) | null;
  loadVmstate: ((bs: BlockDriverState, pos: number, buf: Uint8Array) => void) | null;
  /** query-block's format-specific data, or null. */
  specificInfo(bs: BlockDriverState): Record<string, string | number | boolean> | null;
}

function fileOf(bs: BlockDriverState): BlockFile {
  if (bs.opaque.kind !== 'file') throw new Error(`node '${bs.nodeName}' is not a file node`);
  return bs.opaque.file;
}

/** The qcow2 state of a node. */
export function qcow2Of(bs: BlockDriverState): Qcow2State {
  if (bs.opaque.kind !== 'qcow2') throw new Error(`node '${bs.nodeName}' is not a qcow2 node`);
  return bs.opaque.s;
}

function child(bs: BlockDriverState): BlockDriverState {
  if (!bs.file) throw new Error(`node '${bs.nodeName}' has no file child`);
  return bs.file;
}

const ZERO_CHUNK = 1024 * 1024;

/** The protocol driver over a host or in-memory file. @qemu block/file-posix.c */
export const bdrvFile: BlockDriver = {
  formatName: 'file',
  getLength: (bs) => Math.ceil(fileOf(bs).size() / 512) * 512,
  pread: (bs, offset, buf) => fileOf(bs).pread(offset, buf),
  pwrite: (bs, offset, data) => fileOf(bs).pwrite(offset, data),
  pwriteZeroes(bs, offset, bytes) {
    const f = fileOf(bs);
    for (let done = 0; done < bytes;) {
      const n = Math.min(ZERO_CHUNK, bytes - done);
      f.pwrite(offset + done, new Uint8Array(n));
      done += n;
    }
  },
  pdiscard: () => {}, // discard=ignore, the default: nothing reaches the file
  flush: (bs) => fileOf(bs).flush(),
  close: (bs) => fileOf(bs).close(),
  snapshots: null,
  saveVmstate: null,
  loadVmstate: null,
  specificInfo: () => null,
};

/** Raw images: the guest sees the file as is. @qemu block/raw-format.c */
export const bdrvRaw: BlockDriver = {
  formatName: 'raw',
  getLength: (bs) => child(bs).drv.getLength(child(bs)),
  pread: (bs, offset, buf) => child(bs).drv.pread(child(bs), offset, buf),
  pwrite: (bs, offset, data) => child(bs).drv.pwrite(child(bs), offset, data),
  pwriteZeroes: (bs, offset, bytes, mayUnmap) => child(bs).drv.pwriteZeroes(child(bs), offset, bytes, mayUnmap),
  pdiscard: (bs, offset, bytes) => child(bs).drv.pdiscard(child(bs), offset, bytes),
  flush: (bs) => child(bs).drv.flush(child(bs)),
  close: () => {},
  snapshots: null,
  saveVmstate: null,
  loadVmstate: null,
  specificInfo: () => null,
};

function qcow2Writable(bs: BlockDriverState): Qcow2State {
  const s = qcow2Of(bs);
  if (s.readOnly) blockFail(EPERM, 'Operation not permitted');
  return s;
}

/** qcow2 images. @qemu block/qcow2.c bdrv_qcow2 */
export const bdrvQcow2: BlockDriver = {
  formatName: 'qcow2',
  getLength: (bs) => qcow2Of(bs).size,
  pread: (bs, offset, buf) => qcow2Pread(qcow2Of(bs), offset, buf),
  pwrite: (bs, offset, data) => qcow2Pwrite(qcow2Writable(bs), offset, data),
  pwriteZeroes: (bs, offset, bytes, mayUnmap) => qcow2ZeroClusters(qcow2Writable(bs), offset, bytes, mayUnmap ? 'zero-unmap' : 'zero'),
  pdiscard: (bs, offset, bytes) => qcow2ZeroClusters(qcow2Writable(bs), offset, bytes, 'discard'),
  flush(bs) {
    const s = qcow2Of(bs);
    if (s.readOnly) return;
    qcow2FlushVmstate(s);
    s.dirty = true; // a guest flush always reaches the file, even after a barrier
    qcow2Barrier(s);
  },
  close(bs) {
    const s = qcow2Of(bs);
    if (s.readOnly) return;
    qcow2FlushVmstate(s);
    qcow2Barrier(s); // the file belongs to the protocol node, which closes it
  },
  snapshots: {
    create: (bs, info) => qcow2SnapshotCreate(qcow2Writable(bs), info),
    goto: (bs, idOrName) => qcow2SnapshotGoto(qcow2Writable(bs), idOrName),
    delete: (bs, id, name) => qcow2SnapshotDelete(qcow2Writable(bs), id, name),
    list: (bs) => qcow2SnapshotList(qcow2Of(bs)),
    loadVmstate: (bs, idOrName, pos, buf) => qcow2SnapshotLoadVmstate(qcow2Of(bs), idOrName, pos, buf),
  },
  saveVmstate: (bs, pos, data) => qcow2SaveVmstate(qcow2Writable(bs), pos, data),
  loadVmstate: (bs, pos, buf) => qcow2LoadVmstate(qcow2Of(bs), pos, buf),
  specificInfo: (bs) => qcow2SpecificInfo(qcow2Of(bs)),
};

/** The format drivers -drive format= accepts. @qemu bdrv_find_format */
export function bdrvFindFormat(name: string): BlockDriver | null {
  switch (name) {
    case 'qcow2':
      return bdrvQcow2;
    case 'raw':
      return bdrvRaw;
    case 'file':
      return bdrvFile;
    default:
      return null;
  }
}

/** Fail with ENOTSUP unless the node's driver has `what`. */
export function requireDriverOp<T>(op: T | null, bs: BlockDriverState, what: string): T {
  if (op === null) blockFail(ENOTSUP, `Block format '${bs.drv.formatName}' does not support ${what}`);
  return op;
}
