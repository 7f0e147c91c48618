// Block backends (QEMU's BlockBackend, block/block-backend.c): the named handle a device uses
// (`-drive id=` / query-block's "device"), its root node, the device attached to it, and the
// synchronous byte-level I/O that tools and the loaders use. Asynchronous requests are io.ts.
// Invariants: a backend name is unique and never a node name; a node is the root of at most one
// backend; `inFlight` counts this backend's requests between submission and completion.

import { type LoopMachine, type QEMUTimer, timerDel } from '../loop/index.ts';
import { assert } from '../util/index.ts';
import { type BlockResult, EINVAL, EIO, ENOMEDIUM, EPERM, blockFail, blockTry } from './errno.ts';
import { type BlockDriverState, bdrvClose, bdrvFindNode, bdrvGetLength, blockState, idWellformed } from './block.ts';

/** Completion callback: `ret` is 0 or -errno. @qemu BlockCompletionFunc */
export type BlockAioCb = (opaque: unknown, ret: number) => void;

/** What an asynchronous request does. */
export type BlockRequestKind = 'read' | 'write' | 'flush' | 'discard' | 'write-zeroes';

/** One asynchronous request between submission and completion. */
export interface BlockRequest {
  id: number;
  kind: BlockRequestKind;
  blk: BlockBackend;
  /** The node it was started on (the root then), whose in-flight count it holds. */
  node: BlockDriverState | null;
  offset: number;
  bytes: number;
  /** Read destination or write source. */
  buf: Uint8Array | null;
  /** write-zeroes: the driver may deallocate. */
  mayUnmap: boolean;
  cb: BlockAioCb;
  opaque: unknown;
  /** REALTIME ns at which the modelled device completes it (set when started). */
  completeNs: number;
}

/** @qemu block/block-backend.c BlockBackend */
export interface BlockBackend {
  name: string;
  root: BlockDriverState | null;
  /** The attached device's id or QOM path (query-block's "qdev"), or null. */
  dev: string | null;
  inFlight: number;
  /** Requests started and not completed, in completion order (FIFO). */
  queue: BlockRequest[];
  /** When the modelled device finishes the last started request (REALTIME ns). */
  busyUntilNs: number;
  /** Completes the queue head; on the aio context's REALTIME list. */
  timer: QEMUTimer | null;
  /** Requests submitted while drained, started when the drained section ends. */
  queuedRequests: BlockRequest[];
  ioStatus: 'ok' | 'failed' | 'nospace';
  /** The device reports I/O status (virtio-blk enables it): query-block shows "io-status". */
  ioStatusEnabled: boolean;
  /** -drive's interface type and the unit used for its auto-generated id. */
  ifType: string;
  unit: number;
}

/** @qemu blk_by_name */
export function blkByName(m: LoopMachine, name: string): BlockBackend | null {
  return blockState(m).backends.find((b) => b.name === name) ?? null;
}

/**
 * Create backend `name` over `root` (null: an empty drive). QEMU's checks on the name.
 * @qemu blk_new + monitor_add_blk
 */
export function blkNew(m: LoopMachine, name: string, root: BlockDriverState | null, ifType = 'none', unit = 0): BlockResult<BlockBackend> {
  return blockTry(() => {
    if (!idWellformed(name)) blockFail(EINVAL, 'Invalid device name');
    if (blkByName(m, name)) blockFail(EINVAL, `Device with id '${name}' already exists`);
    if (bdrvFindNode(m, name)) blockFail(EINVAL, `Device name '${name}' conflicts with an existing node name`);
    if (root?.blk) blockFail(EINVAL, `Node '${root.nodeName}' is already in use`);
    const blk: BlockBackend = {
      name, root, dev: null, inFlight: 0, queue: [], busyUntilNs: 0, timer: null, queuedRequests: [],
      ioStatus: 'ok', ioStatusEnabled: false, ifType, unit,
    };
    if (root) root.blk = blk;
    blockState(m).backends.push(blk);
    return blk;
  });
}

/**
 * Attach a device (its id or QOM path) to the backend. @qemu blk_attach_dev
 * Fails with QEMU's text if another device holds it.
 */
export function blkAttachDev(blk: BlockBackend, dev: string): BlockResult<void> {
  return blockTry(() => {
    if (blk.dev !== null) blockFail(EINVAL, `Drive '${blk.name}' is already in use by another device`);
    blk.dev = dev;
  });
}

/** @qemu blk_iostatus_enable */
export function blkIostatusEnable(blk: BlockBackend): void {
  blk.ioStatusEnabled = true;
  blk.ioStatus = 'ok';
}

/** @qemu blk_detach_dev */
export function blkDetachDev(blk: BlockBackend): void {
  blk.dev = null;
}

/** Whether a medium is inserted. @qemu blk_is_available (no trays in detvm) */
export function blkIsAvailable(blk: BlockBackend): boolean {
  return blk.root !== null;
}

/** @qemu blk_is_read_only */
export function blkIsReadOnly(blk: BlockBackend): boolean {
  return blk.root?.readOnly ?? false;
}

/** Length in bytes, or -ENOMEDIUM. @qemu blk_getlength */
export function blkGetLength(blk: BlockBackend): number {
  return blk.root ? bdrvGetLength(blk.root) : -ENOMEDIUM;
}

/**
 * The range check every request passes: no medium is -ENOMEDIUM, a range outside the device
 * -EIO, a write to a read-only drive -EPERM. Returns the root or throws. @qemu blk_check_byte_request
 */
export function blkCheckRequest(blk: BlockBackend, offset: number, bytes: number, write: boolean): BlockDriverState {
  const bs = blk.root;
  if (!bs) return blockFail(ENOMEDIUM, 'No medium found');
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes < 0) {
    blockFail(EIO, 'Input/output error');
  }
  const len = bdrvGetLength(bs);
  if (offset > len || len - offset < bytes) blockFail(EIO, 'Input/output error');
  if (write && bs.readOnly) blockFail(EPERM, 'Operation not permitted');
  return bs;
}

/** Read synchronously (no modelled latency). Returns 0 or -errno. @qemu blk_pread */
export function blkPread(blk: BlockBackend, offset: number, buf: Uint8Array): number {
  const r = blockTry(() => {
    const bs = blkCheckRequest(blk, offset, buf.length, false);
    bs.drv.pread(bs, offset, buf);
  });
  return r.ok ? 0 : -r.errno;
}

/** Write synchronously (no modelled latency). Returns 0 or -errno. @qemu blk_pwrite */
export function blkPwrite(blk: BlockBackend, offset: number, data: Uint8Array): number {
  const r = blockTry(() => {
    const bs = blkCheckRequest(blk, offset, data.length, true);
    bs.drv.pwrite(bs, offset, data);
  });
  return r.ok ? 0 : -r.errno;
}

/**
 * Remove a drive: close its nodes (flushing them) and forget the backend. Its requests must have
 * drained. Returns 0 or the first -errno of the flush. @qemu blk_delete via monitor_remove_blk
 */
export function blkDelete(m: LoopMachine, blk: BlockBackend): number {
  assert(blk.inFlight === 0 && blk.queuedRequests.length === 0, `blk_delete: drive '${blk.name}' has requests in flight`);
  const st = blockState(m);
  st.backends = st.backends.filter((b) => b !== blk);
  if (blk.timer) timerDel(blk.timer);
  const root = blk.root;
  blk.root = null;
  if (!root) return 0;
  root.blk = null;
  return bdrvClose(m, root);
}

/** Flush and close every drive, as QEMU does at exit. Returns 0 or the first -errno. @qemu bdrv_close_all */
export function bdrvCloseAll(m: LoopMachine): number {
  let ret = 0;
  for (const blk of [...blockState(m).backends]) {
    const r = blkDelete(m, blk);
    if (r < 0 && ret === 0) ret = r;
  }
  for (const bs of [...blockState(m).nodes]) {
    if (bs.parent) continue;
    const r = bdrvClose(m, bs);
    if (r < 0 && ret === 0) ret = r;
  }
  return ret;
}
