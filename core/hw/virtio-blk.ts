// virtio-blk (hw/block/virtio-blk.c, QEMU 7.2) on a virtio-mmio transport: one request queue,
// IN / OUT / FLUSH / GET_ID requests completing asynchronously through the block layer's
// modelled latency (several in flight while the guest runs), the used ring and the interrupt
// on completion, and QEMU's config space. Requests are not merged (QEMU merges adjacent ones
// into one block request; the guest sees the same results). I/O errors are reported to the
// guest as VIRTIO_BLK_S_IOERR (werror/rerror=report; detvm has no stop-on-error).
// Invariant: `inflight` counts requests submitted to the block layer and not yet completed;
// it is 0 whenever the block layer is drained (vm_stop, savevm).

import { assert } from '../util/index.ts';
import type { LoopMachine } from '../loop/index.ts';
import {
  type BlockBackend, blkAioFlush, blkAioPreadv, blkAioPwritev, blkAttachDev, blkGetLength, blkIostatusEnable,
  blkIsAvailable, blkIsReadOnly,
} from '../block/index.ts';
import { TRACE_DEVICES, traceEvent } from '../trace/index.ts';
import {
  type VirtIOSg, type VirtQueueElement, iovDiscardFront, iovFromBuf, iovHead, iovSize, iovToBuf, virtqueuePop,
  virtqueuePush,
} from './virtqueue.ts';
import {
  type VirtioDevice, type VirtioMmioProxy, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
  virtioError, virtioMmioPlug, virtioNotify,
} from './virtio-mmio.ts';

export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
const VIRTIO_BLK_T_BARRIER = 0x80000000;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;
export const VIRTIO_BLK_ID_BYTES = 20;
const SECTOR_SIZE = 512;
const OUTHDR_SIZE = 16;
/** The config space up to num_queues (no discard / write-zeroes fields: not offered). */
const CONFIG_SIZE = 36;
/** @qemu virtio-blk "queue-size" default */
export const VIRTIO_BLK_QUEUE_SIZE = 256;
/** BDRV_REQUEST_MAX_SECTORS: 2^31 - 1 bytes rounded down to sectors. */
const REQUEST_MAX_SECTORS = Math.floor(0x7fffffff / SECTOR_SIZE);

/** Device state as saved (the config byte the driver may change). */
export interface VirtIOBlockState {
  /** Write cache enabled, as reported in the config space. */
  wce: number;
}

/** A virtio-blk device plugged into a transport. */
export interface VirtIOBlock {
  m: LoopMachine;
  proxy: VirtioMmioProxy;
  blk: BlockBackend;
  /** -device id=, or null (then its QOM path names it). */
  id: string | null;
  /** The serial GET_ID returns ("" when none). */
  serial: string;
  s: VirtIOBlockState;
  inflight: number;
  /** Bumped by every device reset: completions of older requests no longer touch the rings. */
  resetGen: number;
  /**
   * Called after requests were submitted from a queue notify. A notify comes from a vCPU's MMIO
   * write, and the vCPU's instruction budget was computed before the requests' completion
   * deadlines existed: the board kicks the vCPU so the main loop can complete them in time (in
   * QEMU the completion arrives from another thread and kicks it: icount_notify_exit).
   */
  onSubmit: () => void;
  vdev: VirtioDevice;
}

/** One request between pop and completion. @qemu VirtIOBlockReq */
interface VirtIOBlockReq {
  s: VirtIOBlock;
  elem: VirtQueueElement;
  /** iov_size of the writable buffers (the used length). */
  inLen: number;
  /** The status byte: the last writable byte of the chain. */
  statusAddr: number;
  /** Writable buffers without the status byte (where read data goes). */
  inData: VirtIOSg[];
  /** Read destination until completion. */
  buf: Uint8Array | null;
  kind: 'read' | 'write' | 'flush';
  /** The device's resetGen when the request was taken. */
  gen: number;
}

function features(ro: boolean): number[] {
  const bits = [VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_TOPOLOGY,
    VIRTIO_F_ANY_LAYOUT, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_F_VERSION_1];
  if (ro) bits.push(VIRTIO_BLK_F_RO);
  const words = [0, 0];
  for (const b of bits) words[b >> 5] = (words[b >> 5]! | (1 << (b & 31))) >>> 0;
  return words;
}

/** The config space, little-endian. @qemu virtio_blk_update_config */
function virtioBlkGetConfig(s: VirtIOBlock): Uint8Array {
  const cfg = new Uint8Array(CONFIG_SIZE);
  const dv = new DataView(cfg.buffer);
  const sectors = Math.floor(Math.max(0, blkGetLength(s.blk)) / SECTOR_SIZE);
  dv.setUint32(0, sectors % 0x1_0000_0000, true);
  dv.setUint32(4, Math.floor(sectors / 0x1_0000_0000), true);
  dv.setUint32(12, VIRTIO_BLK_QUEUE_SIZE - 2, true); // seg_max (seg-max-adjust=on)
  dv.setUint32(20, SECTOR_SIZE, true); // blk_size
  cfg[32] = s.s.wce;
  dv.setUint16(34, 1, true); // num_queues
  return cfg;
}

/** Only the wce byte is writable. @qemu virtio_blk_set_config */
function virtioBlkSetConfig(s: VirtIOBlock, bytes: Uint8Array): void {
  s.s.wce = bytes[32]! ? 1 : 0;
}

/** Status byte, used ring, interrupt. @qemu virtio_blk_req_complete */
function virtioBlkReqComplete(req: VirtIOBlockReq, status: number): void {
  const s = req.s;
  const p = s.proxy;
  iovFromBuf(p.as, [{ addr: req.statusAddr, len: 1 }], 0, Uint8Array.of(status));
  traceEvent(s.m, TRACE_DEVICES, 'virtio_blk_req_complete', { transport: p.index, head: req.elem.index, status });
  virtqueuePush(p.as, p.s.vqs[0]!, req.elem, req.inLen);
  virtioNotify(p, 0);
}

/** A block request finished (any kind). @qemu virtio_blk_rw_complete / virtio_blk_flush_complete */
function virtioBlkRwComplete(opaque: unknown, ret: number): void {
  const req = opaque as VirtIOBlockReq;
  const s = req.s;
  assert(s.inflight > 0, 'virtio-blk completion without a request in flight');
  s.inflight--;
  if (req.gen !== s.resetGen) return; // the driver reset the device meanwhile: its rings are gone
  if (ret === 0 && req.kind === 'read') iovFromBuf(s.proxy.as, req.inData, 0, req.buf!);
  req.buf = null;
  virtioBlkReqComplete(req, ret === 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
}

/** @qemu virtio_blk_sect_range_ok */
function sectRangeOk(s: VirtIOBlock, sector: bigint, size: number): boolean {
  const nb = Math.floor(size / SECTOR_SIZE);
  if (nb > REQUEST_MAX_SECTORS || size % SECTOR_SIZE !== 0) return false;
  const total = BigInt(Math.floor(Math.max(0, blkGetLength(s.blk)) / SECTOR_SIZE));
  return sector <= total && BigInt(nb) <= total - sector;
}

/** IN or OUT: check the range and submit. */
function handleRw(req: VirtIOBlockReq, isWrite: boolean, sector: bigint, outData: VirtIOSg[]): void {
  const s = req.s;
  const sg = isWrite ? outData : req.inData;
  const size = iovSize(sg);
  if (!sectRangeOk(s, sector, size)) {
    virtioBlkReqComplete(req, VIRTIO_BLK_S_IOERR);
    return;
  }
  const offset = Number(sector) * SECTOR_SIZE;
  const buf = new Uint8Array(size);
  s.inflight++;
  if (isWrite) {
    iovToBuf(s.proxy.as, sg, 0, buf);
    req.kind = 'write';
    blkAioPwritev(s.m, s.blk, offset, buf, virtioBlkRwComplete, req);
  } else {
    req.buf = buf;
    blkAioPreadv(s.m, s.blk, offset, buf, virtioBlkRwComplete, req);
  }
}

/** GET_ID: the serial and its NUL, at most 20 bytes. */
function handleGetId(req: VirtIOBlockReq): void {
  const s = req.s;
  const serial = new TextEncoder().encode(s.serial);
  const size = Math.min(serial.length + 1, iovSize(req.inData), VIRTIO_BLK_ID_BYTES);
  const out = new Uint8Array(size);
  out.set(serial.subarray(0, size));
  iovFromBuf(s.proxy.as, req.inData, 0, out);
  virtioBlkReqComplete(req, VIRTIO_BLK_S_OK);
}

/**
 * Parse and start one request. Returns false when the chain is malformed (the device is then
 * broken and the queue is not processed further). @qemu virtio_blk_handle_request
 */
function virtioBlkHandleRequest(s: VirtIOBlock, elem: VirtQueueElement): boolean {
  const p = s.proxy;
  if (elem.outSg.length < 1 || elem.inSg.length < 1) {
    virtioError(p, 'virtio-blk missing headers');
    return false;
  }
  const hdr = new Uint8Array(OUTHDR_SIZE);
  if (iovToBuf(p.as, elem.outSg, 0, hdr) !== OUTHDR_SIZE) {
    virtioError(p, 'virtio-blk request outhdr too short');
    return false;
  }
  const last = elem.inSg[elem.inSg.length - 1]!;
  const inLen = iovSize(elem.inSg);
  const req: VirtIOBlockReq = {
    s, elem, inLen, statusAddr: last.addr + last.len - 1, inData: iovHead(elem.inSg, inLen - 1), buf: null, kind: 'read',
    gen: s.resetGen,
  };
  const dv = new DataView(hdr.buffer);
  const type = dv.getUint32(0, true);
  const sector = dv.getBigUint64(8, true);
  traceEvent(s.m, TRACE_DEVICES, 'virtio_blk_handle_request', { transport: p.index, head: elem.index, type, sector: Number(sector) });
  switch ((type & ~(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER)) >>> 0) {
    case VIRTIO_BLK_T_IN:
      handleRw(req, (type & VIRTIO_BLK_T_OUT) !== 0, sector, iovDiscardFront(elem.outSg, OUTHDR_SIZE));
      return true;
    case VIRTIO_BLK_T_FLUSH:
      req.kind = 'flush';
      s.inflight++;
      blkAioFlush(s.m, s.blk, virtioBlkRwComplete, req);
      return true;
    case VIRTIO_BLK_T_GET_ID:
      handleGetId(req);
      return true;
    default:
      virtioBlkReqComplete(req, VIRTIO_BLK_S_UNSUPP);
      return true;
  }
}

/** Take every available request. @qemu virtio_blk_handle_vq */
function virtioBlkHandleOutput(s: VirtIOBlock, n: number): void {
  const before = s.inflight;
  virtioBlkHandleVq(s, n);
  if (s.inflight > before) s.onSubmit();
}

function virtioBlkHandleVq(s: VirtIOBlock, n: number): void {
  const p = s.proxy;
  const vq = p.s.vqs[n]!;
  // Each pop consumes one avail entry, and inuse <= num bounds how many can be taken.
  for (let i = 0; i <= vq.num; i++) {
    if (p.s.broken) return;
    const r = virtqueuePop(p.as, vq);
    if (r.kind === 'empty') return;
    if (r.kind === 'error') {
      virtioError(p, r.error);
      return;
    }
    if (!virtioBlkHandleRequest(s, r.elem)) return;
  }
}

/** Options of `-device virtio-blk-device`, and the board's submit hook (VirtIOBlock.onSubmit). */
export interface VirtioBlkOptions {
  id: string | null;
  /** Without an id: N of /machine/peripheral-anon/device[N] (anonymous devices before it). */
  anonIndex?: number;
  serial: string | null;
  onSubmit?: () => void;
}

/**
 * Realize virtio-blk on transport `proxy` over drive `blk`: attach the drive, enable its I/O
 * status and plug the device. Returns the device or QEMU's error text.
 * @qemu virtio_blk_device_realize
 */
export function virtioBlkRealize(m: LoopMachine, proxy: VirtioMmioProxy, blk: BlockBackend, o: VirtioBlkOptions): VirtIOBlock | string {
  if (!blkIsAvailable(blk)) return 'Device needs media, but drive is empty';
  const qdev = o.id ?? `/machine/peripheral-anon/device[${o.anonIndex ?? 0}]`;
  const at = blkAttachDev(blk, qdev);
  if (!at.ok) return at.error;
  blkIostatusEnable(blk);
  const ro = blkIsReadOnly(blk);
  const s = {
    m, proxy, blk, id: o.id, serial: o.serial ?? '', s: { wce: blk.root?.cache.writeback ? 1 : 0 }, inflight: 0,
    resetGen: 0, onSubmit: o.onSubmit ?? ((): void => {}),
  } as VirtIOBlock;
  s.vdev = {
    typeName: 'virtio-blk-device',
    deviceId: VIRTIO_ID_BLOCK,
    hostFeatures: features(ro),
    queueSizes: [VIRTIO_BLK_QUEUE_SIZE],
    getConfig: () => virtioBlkGetConfig(s),
    setConfig: (bytes) => virtioBlkSetConfig(s, bytes),
    handleOutput: (n) => virtioBlkHandleOutput(s, n),
    reset: () => virtioBlkReset(s),
  };
  virtioMmioPlug(proxy, s.vdev);
  return s;
}

/**
 * Device reset. QEMU drains the drive here, so requests in flight complete into the rings that
 * the reset then forgets; detvm lets them finish later and drops their completions (a drain
 * from inside a vCPU's MMIO write would advance time under the running vCPU). Either way the
 * driver sees empty rings. @qemu virtio_blk_reset
 */
function virtioBlkReset(s: VirtIOBlock): void {
  s.resetGen++;
  s.s.wce = s.blk.root?.cache.writeback ? 1 : 0;
}
