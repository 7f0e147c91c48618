// Bottom halves and the AioContext (util/async.c, util/aio-posix.c aio_dispatch). Flags and
// order as QEMU: scheduling pushes a BH at the head of bh_list (LIFO); aio_bh_poll moves the
// whole list into a new slice and runs it, so BHs scheduled by a callback run in the next poll.
// Invariants: a BH is in bhList or in a slice iff BH_PENDING is set; every drain is bounded.

import { assert } from '../util/index.ts';
import { type ClocksState, SCALE_MS } from './clock.ts';
import {
  type TimerListGroup, LoopLimitError, timerListGroupCreate,
  timerlistgroupDeadlineNs, timerlistRunTimers,
} from './timer.ts';
import { type Traced, TRACE_CONTROL, traceEnter, traceExit } from '../trace/index.ts';

export const BH_PENDING = 1;
export const BH_SCHEDULED = 2;
export const BH_DELETED = 4;
export const BH_ONESHOT = 8;
export const BH_IDLE = 16;

/** Idle BHs make the poll wait at most this long. @qemu util/async.c aio_compute_timeout */
export const BH_IDLE_TIMEOUT_NS = 10 * SCALE_MS;
/** Upper bound of BHs run by one aio_bh_poll before we call it a storm. */
export const BH_POLL_MAX = 1_000_000;

export type BhCb = (opaque: unknown) => void;

/** @qemu util/async.c QEMUBH */
export interface QEMUBH {
  name: string;
  cb: BhCb;
  opaque: unknown;
  flags: number;
  ctx: AioContext;
}

/** @qemu include/block/aio.h AioContext (the parts the main loop uses) */
export interface AioContext {
  name: string;
  /** bh_list as an array whose *end* is QEMU's list head (push = QSLIST_INSERT_HEAD). */
  bhList: QEMUBH[];
  /** Slices being drained: each holds BHs in run order (run from index `pos`). */
  slices: { bhs: QEMUBH[]; pos: number }[];
  tlg: TimerListGroup;
  /** fd handlers registered on this context, dispatched after BHs. */
  fdHandlers: AioFdHandler[];
  /** Called when a BH is enqueued (icount_notify_exit: kick the running vCPU). */
  onEnqueue: (() => void) | null;
}

/** An fd handler on an AioContext (aio_set_fd_handler): `ready` says whether it has work. */
export interface AioFdHandler {
  name: string;
  ready: () => boolean;
  dispatch: () => void;
}

export function aioContextNew(name: string, clocks: ClocksState): AioContext {
  const ctx: AioContext = {
    name,
    bhList: [],
    slices: [],
    tlg: null as unknown as TimerListGroup,
    fdHandlers: [],
    onEnqueue: null,
  };
  // aio_notify wakes a poll blocked in another thread. detvm's poll never runs concurrently
  // with the code that arms a timer or schedules a BH, and the next prepare recomputes the
  // timeout from the lists themselves, so the notification has nothing to do.
  ctx.tlg = timerListGroupCreate(clocks, () => {});
  return ctx;
}

/** @qemu aio_bh_new_full */
export function aioBhNew(ctx: AioContext, name: string, cb: BhCb, opaque: unknown = null): QEMUBH {
  return { name, cb, opaque, flags: 0, ctx };
}

function aioBhEnqueue(bh: QEMUBH, newFlags: number): void {
  const old = bh.flags;
  bh.flags = old | BH_PENDING | newFlags;
  if ((old & BH_PENDING) === 0) bh.ctx.bhList.push(bh);
  bh.ctx.onEnqueue?.();
}

/** @qemu qemu_bh_schedule */
export function qemuBhSchedule(bh: QEMUBH): void {
  aioBhEnqueue(bh, BH_SCHEDULED);
}

/** Schedule with the IDLE flag: the poll may wait up to 10 ms for it. @qemu qemu_bh_schedule_idle */
export function qemuBhScheduleIdle(bh: QEMUBH): void {
  aioBhEnqueue(bh, BH_SCHEDULED | BH_IDLE);
}

/** Schedule a one-shot BH that is freed after it runs. @qemu aio_bh_schedule_oneshot */
export function aioBhScheduleOneshot(ctx: AioContext, name: string, cb: BhCb, opaque: unknown = null): void {
  aioBhEnqueue(aioBhNew(ctx, name, cb, opaque), BH_SCHEDULED | BH_ONESHOT);
}

/** Clear SCHEDULED; the BH stays queued and is skipped. @qemu qemu_bh_cancel */
export function qemuBhCancel(bh: QEMUBH): void {
  bh.flags &= ~BH_SCHEDULED;
}

/** Mark for deletion; freed at its next dequeue. @qemu qemu_bh_delete */
export function qemuBhDelete(bh: QEMUBH): void {
  aioBhEnqueue(bh, BH_DELETED);
}

/** Whether `bh` will run at the next poll. */
export function qemuBhIsScheduled(bh: QEMUBH): boolean {
  return (bh.flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED;
}

function dequeueFlags(bh: QEMUBH): number {
  const old = bh.flags;
  bh.flags = old & ~(BH_PENDING | BH_SCHEDULED | BH_IDLE | BH_ONESHOT);
  return old;
}

/**
 * Run the scheduled BHs: the current list becomes a slice (run head first, i.e. last scheduled
 * first); BHs scheduled meanwhile wait for the next poll. Returns whether a non-idle BH ran.
 * @qemu util/async.c aio_bh_poll
 */
export function aioBhPoll(m: Traced, ctx: AioContext): boolean {
  const list = ctx.bhList;
  if (list.length === 0 && ctx.slices.length === 0) return false;
  ctx.bhList = [];
  list.reverse(); // bhList's end is the list head; a slice runs head first.
  ctx.slices.push({ bhs: list, pos: 0 });
  let ret = false;
  let n = 0;
  // Only slices that existed when this poll started are drained here; QEMU drains until the
  // slice list is empty, and nested polls (aio_poll from a BH) may add slices, which then
  // also run. detvm has no nested polls, so this is the same.
  while (ctx.slices.length > 0) {
    const s = ctx.slices[0]!;
    if (s.pos >= s.bhs.length) {
      ctx.slices.shift();
      continue;
    }
    const bh = s.bhs[s.pos++]!;
    if (++n > BH_POLL_MAX) {
      throw new LoopLimitError(`bottom-half storm: more than ${BH_POLL_MAX} BHs in one aio_bh_poll; last callback: ${m.trace.lastKind} ${m.trace.lastDispatched}`);
    }
    const flags = dequeueFlags(bh);
    if ((flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
      if ((flags & BH_IDLE) === 0) ret = true;
      m.trace.lastDispatched = bh.name;
      m.trace.lastKind = 'bh';
      if (m.trace.level >= TRACE_CONTROL) {
        traceEnter(m, TRACE_CONTROL, bh.name);
        bh.cb(bh.opaque);
        traceExit(m, true, bh.name);
      } else {
        bh.cb(bh.opaque);
      }
    }
  }
  return ret;
}

/** 0 if a non-idle BH is scheduled, 10 ms for idle ones, else the ctx timer deadline. @qemu aio_compute_timeout */
export function aioComputeTimeout(ctx: AioContext): number {
  let r = scanScheduled(ctx.bhList, 0);
  if (r === 0) return 0;
  for (const s of ctx.slices) {
    const rs = scanScheduled(s.bhs, s.pos);
    if (rs === 0) return 0;
    if (rs > 0) r = rs;
  }
  if (r > 0) return r;
  return timerlistgroupDeadlineNs(ctx.tlg);
}

/** 0 if a non-idle BH is scheduled in bhs[from..], BH_IDLE_TIMEOUT_NS if only idle ones, else -1. */
function scanScheduled(bhs: readonly QEMUBH[], from: number): number {
  let r = -1;
  for (let i = from; i < bhs.length; i++) {
    const f = bhs[i]!.flags;
    if ((f & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
      if ((f & BH_IDLE) === 0) return 0;
      r = BH_IDLE_TIMEOUT_NS;
    }
  }
  return r;
}

/**
 * Whether a non-idle BH is scheduled, so the next poll will not sleep (qemu_notify_event is one).
 * Reads no clock: the live driver asks it before it waits.
 */
export function aioBhScheduledNow(ctx: AioContext): boolean {
  if (scanScheduled(ctx.bhList, 0) === 0) return true;
  for (const s of ctx.slices) if (scanScheduled(s.bhs, s.pos) === 0) return true;
  return false;
}

/** Ready if any BH (idle ones too) is scheduled, an fd handler has work, or a timer is due. @qemu aio_ctx_check */
export function aioCtxCheck(ctx: AioContext): boolean {
  if (scanScheduled(ctx.bhList, 0) >= 0) return true;
  for (const s of ctx.slices) if (scanScheduled(s.bhs, s.pos) >= 0) return true;
  for (const h of ctx.fdHandlers) if (h.ready()) return true;
  return timerlistgroupDeadlineNs(ctx.tlg) === 0;
}

/** BHs, then fd handlers, then the context's timers. @qemu util/aio-posix.c aio_dispatch */
export function aioDispatch(m: Traced, ctx: AioContext): void {
  aioBhPoll(m, ctx);
  for (const h of ctx.fdHandlers) {
    if (!h.ready()) continue;
    m.trace.lastDispatched = h.name;
    m.trace.lastKind = 'fd';
    const opened = traceEnter(m, TRACE_CONTROL, h.name);
    h.dispatch();
    traceExit(m, opened, h.name);
  }
  for (const tl of ctx.tlg.lists) timerlistRunTimers(m, tl);
}

/** Total BHs queued (pending) on a context, for tests and limits. */
export function aioBhPendingCount(ctx: AioContext): number {
  let n = ctx.bhList.length;
  for (const s of ctx.slices) n += s.bhs.length - s.pos;
  assert(n >= 0, 'negative BH count');
  return n;
}
