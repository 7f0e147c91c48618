// Asynchronous block requests in virtual time (QEMU's blk_aio_* and block/io.c drain/flush).
// A request is queued on its backend and completes after a modelled latency: each backend serves
// its queue in order (FIFO), a request finishing `fixed + bytes * perMiB` ns after the later of
// its submission and the previous request's completion. One timer per backend on the aio
// context's REALTIME list fires at the head's completion time; the I/O is then performed on the
// image and only afterwards does the callback run, so a write is never acknowledged before it is
// in the image. In flight = submitted and not yet completed, counted per node, per backend and
// per machine. bdrv_drain_all polls the aio context only (as QEMU's AIO_WAIT_WHILE, never the
// whole main loop, so it is safe inside a monitor command) until nothing is in flight; requests
// submitted while drained wait for the drained section to end.

import { assert } from '../util/index.ts';
import {
  type LoopMachine, QEMU_CLOCK_REALTIME, SCALE_NS, aioComputeTimeout, aioDispatch, clockAdvanceSimTo, qemuClockGetNs,
  timerModNs, timerNew,
} from '../loop/index.ts';
import { TRACE_CONTROL, TRACE_DEVICES, traceEvent } from '../trace/index.ts';
import { blockTry } from './errno.ts';
import { type BlockDriverState, bdrvNextAll, blockState } from './block.ts';
import { type BlockAioCb, type BlockBackend, type BlockRequest, type BlockRequestKind, blkCheckRequest } from './block-backend.ts';

/** Polls bdrv_drain_all may take before it reports requests that never complete. */
export const DRAIN_POLL_MAX = 10_000_000;

/** Thrown when a drain cannot finish: names what is still in flight and the virtual time. */
export class BlockDrainLimitError extends Error {
  override name = 'BlockDrainLimitError';
}

/** A submitted request's handle (QEMU's BlockAIOCB; detvm has no cancellation). */
export interface BlockAiocb {
  id: number;
}

interface BlkTimerCtx {
  m: LoopMachine;
  blk: BlockBackend;
}

function nowNs(m: LoopMachine): number {
  return qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME);
}

function latencyNs(m: LoopMachine, kind: BlockRequestKind, bytes: number): number {
  const l = blockState(m).latency;
  if (kind === 'flush') return l.fixedNs + l.flushNs;
  const moved = kind === 'read' || kind === 'write' ? bytes : 0;
  return l.fixedNs + Math.floor((moved * l.nsPerMiB) / 1048576);
}

/** Count a request in flight, queue it behind the backend's earlier ones and arm the timer. */
function startRequest(m: LoopMachine, req: BlockRequest): void {
  const blk = req.blk;
  const start = Math.max(nowNs(m), blk.busyUntilNs);
  req.completeNs = start + latencyNs(m, req.kind, req.bytes);
  blk.busyUntilNs = req.completeNs;
  blockState(m).inFlight++;
  blk.inFlight++;
  if (blk.root) blk.root.inFlight++;
  req.node = blk.root;
  blk.queue.push(req);
  if (!blk.timer) {
    const ctx: BlkTimerCtx = { m, blk };
    blk.timer = timerNew(m.loop.aio.tlg, QEMU_CLOCK_REALTIME, SCALE_NS, 'blk_aio_complete', blkAioCompleteTimer, ctx);
  }
  if (blk.queue.length === 1) timerModNs(blk.timer, req.completeNs);
}

/** Perform a request on the image. Returns 0 or -errno. */
function blkPerform(req: BlockRequest): number {
  const r = blockTry(() => {
    const blk = req.blk;
    switch (req.kind) {
      case 'read': {
        const bs = blkCheckRequest(blk, req.offset, req.bytes, false);
        bs.drv.pread(bs, req.offset, req.buf!);
        bs.stats.rdBytes += req.bytes;
        bs.stats.rdOperations++;
        return;
      }
      case 'write': {
        const bs = blkCheckRequest(blk, req.offset, req.bytes, true);
        bs.drv.pwrite(bs, req.offset, req.buf!);
        bs.stats.wrBytes += req.bytes;
        bs.stats.wrOperations++;
        return;
      }
      case 'write-zeroes': {
        const bs = blkCheckRequest(blk, req.offset, req.bytes, true);
        bs.drv.pwriteZeroes(bs, req.offset, req.bytes, req.mayUnmap && bs.unmap);
        bs.stats.wrBytes += req.bytes;
        bs.stats.wrOperations++;
        return;
      }
      case 'discard': {
        const bs = blkCheckRequest(blk, req.offset, req.bytes, true);
        if (!bs.unmap) return; // discard=ignore: succeed without touching the image
        bs.drv.pdiscard(bs, req.offset, req.bytes);
        bs.stats.unmapOperations++;
        return;
      }
      case 'flush': {
        const bs = blkCheckRequest(blk, 0, 0, false);
        if (!bs.cache.noFlush) bs.drv.flush(bs);
        bs.stats.flushOperations++;
        return;
      }
    }
  });
  return r.ok ? 0 : -r.errno;
}

/** The backend's timer: complete every started request that is due, in order. */
function blkAioCompleteTimer(opaque: unknown): void {
  const { m, blk } = opaque as BlkTimerCtx;
  const st = blockState(m);
  const now = nowNs(m);
  // Only the requests due now; ones their callbacks submit go behind them and wait their turn.
  // Checked by identity at each step: a callback that drains (nested aio poll) may complete
  // some of them itself.
  const due = new Set<BlockRequest>();
  for (const r of blk.queue) {
    if (r.completeNs > now) break;
    due.add(r);
  }
  while (blk.queue.length > 0 && due.has(blk.queue[0]!)) {
    const req = blk.queue.shift()!;
    const ret = blkPerform(req);
    st.inFlight--;
    blk.inFlight--;
    if (req.node) req.node.inFlight--;
    traceEvent(m, TRACE_DEVICES, 'blk_aio_complete', { blk: blk.name, id: req.id, kind: req.kind, ret });
    // Re-arm before the callback: if it drains, the poll must see the rest still pending.
    blkArmTimer(m, blk);
    req.cb(req.opaque, ret);
  }
  blkArmTimer(m, blk);
}

/** Arm the backend's timer for its queue head, if any (never in the past). */
function blkArmTimer(m: LoopMachine, blk: BlockBackend): void {
  if (blk.queue.length > 0 && blk.timer) timerModNs(blk.timer, Math.max(nowNs(m), blk.queue[0]!.completeNs));
}

function submit(m: LoopMachine, blk: BlockBackend, kind: BlockRequestKind, offset: number, bytes: number, buf: Uint8Array | null, mayUnmap: boolean, cb: BlockAioCb, opaque: unknown): BlockAiocb {
  const st = blockState(m);
  const req: BlockRequest = {
    id: st.nextRequestId++, kind, blk, node: null, offset, bytes, buf, mayUnmap, cb, opaque, completeNs: -1,
  };
  traceEvent(m, TRACE_DEVICES, `blk_aio_${kind === 'read' ? 'preadv' : kind === 'write' ? 'pwritev' : kind === 'flush' ? 'flush' : kind === 'discard' ? 'pdiscard' : 'pwrite_zeroes'}`, {
    blk: blk.name, id: req.id, offset, bytes,
  });
  if (st.quiesceCounter > 0) blk.queuedRequests.push(req);
  else startRequest(m, req);
  return { id: req.id };
}

/** Read `buf.length` bytes at `offset`; `cb(opaque, ret)` runs after the modelled latency. @qemu blk_aio_preadv */
export function blkAioPreadv(m: LoopMachine, blk: BlockBackend, offset: number, buf: Uint8Array, cb: BlockAioCb, opaque: unknown = null): BlockAiocb {
  return submit(m, blk, 'read', offset, buf.length, buf, false, cb, opaque);
}

/**
 * Write `data` at `offset`. The bytes are taken at completion time (do not modify `data` until
 * the callback runs), written to the image, then `cb(opaque, ret)` runs. @qemu blk_aio_pwritev
 */
export function blkAioPwritev(m: LoopMachine, blk: BlockBackend, offset: number, data: Uint8Array, cb: BlockAioCb, opaque: unknown = null): BlockAiocb {
  return submit(m, blk, 'write', offset, data.length, data, false, cb, opaque);
}

/** Zero a range (BDRV_REQ_MAY_UNMAP with `mayUnmap`). @qemu blk_aio_pwrite_zeroes */
export function blkAioPwriteZeroes(m: LoopMachine, blk: BlockBackend, offset: number, bytes: number, mayUnmap: boolean, cb: BlockAioCb, opaque: unknown = null): BlockAiocb {
  return submit(m, blk, 'write-zeroes', offset, bytes, null, mayUnmap, cb, opaque);
}

/** Discard a range (whole clusters read as zero afterwards on qcow2). @qemu blk_aio_pdiscard */
export function blkAioPdiscard(m: LoopMachine, blk: BlockBackend, offset: number, bytes: number, cb: BlockAioCb, opaque: unknown = null): BlockAiocb {
  return submit(m, blk, 'discard', offset, bytes, null, false, cb, opaque);
}

/** Flush everything written before it to stable storage. @qemu blk_aio_flush */
export function blkAioFlush(m: LoopMachine, blk: BlockBackend, cb: BlockAioCb, opaque: unknown = null): BlockAiocb {
  return submit(m, blk, 'flush', 0, 0, null, false, cb, opaque);
}

/** Requests in flight on the whole machine. */
export function bdrvInFlightAll(m: LoopMachine): number {
  return blockState(m).inFlight;
}

/** Live mode cannot wait for simulated time: make every queued request due now. */
function expediteAll(m: LoopMachine): void {
  const now = nowNs(m);
  for (const blk of blockState(m).backends) {
    for (const req of blk.queue) req.completeNs = Math.min(req.completeNs, now);
    blk.busyUntilNs = Math.min(blk.busyUntilNs, now);
    if (blk.queue.length > 0 && blk.timer) timerModNs(blk.timer, now);
  }
}

/**
 * Run the aio context (bottom halves, fd handlers, its timers) until no request is in flight,
 * advancing simulated time to each completion in virtual mode. Bounded by DRAIN_POLL_MAX.
 * @qemu block/io.c bdrv_drain_all_begin's AIO_WAIT_WHILE(bdrv_drain_all_poll())
 */
function bdrvDrainAllPoll(m: LoopMachine): void {
  const st = blockState(m);
  for (let i = 0; st.inFlight > 0; i++) {
    if (i >= DRAIN_POLL_MAX) {
      throw new BlockDrainLimitError(`bdrv_drain_all: ${st.inFlight} requests still in flight after ${i} polls at ${nowNs(m)} ns`);
    }
    if (m.clocks.mode === 'live') expediteAll(m);
    const wait = aioComputeTimeout(m.loop.aio);
    if (wait < 0) {
      throw new BlockDrainLimitError(`bdrv_drain_all: ${st.inFlight} requests in flight but nothing on the aio context will complete them (at ${nowNs(m)} ns)`);
    }
    if (wait > 0 && m.clocks.mode === 'virtual') {
      clockAdvanceSimTo(m.clocks, m.clocks.simNs + wait);
      m.loop.hooks.onTimeAdvance(m, wait);
    }
    aioDispatch(m, m.loop.aio);
  }
}

/** Enter a drained section: wait for every request; new ones wait for the end. @qemu bdrv_drain_all_begin */
export function bdrvDrainAllBegin(m: LoopMachine): void {
  const st = blockState(m);
  st.quiesceCounter++;
  // Traced only when there is something to wait for, so diskless stops keep their traces.
  if (st.inFlight > 0) traceEvent(m, TRACE_CONTROL, 'bdrv_drain_all_begin', { in_flight: st.inFlight });
  bdrvDrainAllPoll(m);
}

/** Leave a drained section; at the outermost end, start the requests that waited. @qemu bdrv_drain_all_end */
export function bdrvDrainAllEnd(m: LoopMachine): void {
  const st = blockState(m);
  assert(st.quiesceCounter > 0, 'bdrv_drain_all_end without bdrv_drain_all_begin');
  st.quiesceCounter--;
  if (st.quiesceCounter > 0) return;
  for (const blk of st.backends) {
    const waiting = blk.queuedRequests;
    if (waiting.length === 0) continue;
    blk.queuedRequests = [];
    traceEvent(m, TRACE_CONTROL, 'bdrv_drain_all_end', { blk: blk.name, restarted: waiting.length });
    for (const req of waiting) startRequest(m, req);
  }
}

/** Wait until nothing is in flight. @qemu block/io.c bdrv_drain_all */
export function bdrvDrainAll(m: LoopMachine): void {
  bdrvDrainAllBegin(m);
  bdrvDrainAllEnd(m);
}

/**
 * Flush one node synchronously: buffered VM state and all writes reach stable storage. Returns 0
 * or -errno. This is what closing a vmstate QEMUFile does. @qemu block/io.c bdrv_flush
 */
export function bdrvFlush(bs: BlockDriverState): number {
  if (bs.readOnly || bs.cache.noFlush) return 0;
  const r = blockTry(() => bs.drv.flush(bs));
  return r.ok ? 0 : -r.errno;
}

/**
 * Flush every node (format, then its file) synchronously. Returns 0 or the first -errno.
 * Drives with cache.no-flush skip it. @qemu block/io.c bdrv_flush_all
 */
export function bdrvFlushAll(m: LoopMachine): number {
  let result = 0;
  for (const bs of bdrvNextAll(m)) {
    const r = bdrvFlush(bs);
    if (r < 0 && result === 0) result = r;
  }
  return result;
}
