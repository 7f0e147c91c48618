// Timer lists with QEMU's semantics (util/qemu-timer.c): one list per clock type in a group,
// timer_mod / timer_mod_anticipate / timer_del, deadlines, and run_timers. QEMU keeps each list
// sorted by (expire, arming order): a timer armed at a deadline others already have goes after
// them. The order is kept by a TimerQueue (timer-queue.ts): a FIFO bucket per distinct deadline,
// linked through the timers as QEMU's list is, and a min-heap of the buckets. Re-arming or
// deleting unlinks the timer at once, so the queue holds exactly the pending timers, and the
// bucket's FIFO is the arming order.
// Invariant: a timer is pending iff expireNs >= 0, iff it is in its list's queue (in the bucket
// of expireNs).

import { assert, assertNs } from '../util/index.ts';
import {
  type ClockType, type ClocksState, QEMU_CLOCK_VIRTUAL, QEMU_CLOCK_MAX, qemuClockGetNs,
  qemuSoonestTimeout, CLOCK_NAMES,
} from './clock.ts';
import {
  type TimerQueue, timerQueueCreate, timerQueueHead, timerQueueHeadNs, timerQueueInsert, timerQueueRemove,
  timerQueuePopHead, timerQueueSoonestNs,
} from './timer-queue.ts';
import { type Traced, TRACE_CONTROL, traceEnter, traceExit } from '../trace/index.ts';

/** The timer services external events (chardev reconnect...): replay does not gate it. */
export const QEMU_TIMER_ATTR_EXTERNAL = 1;
export const QEMU_TIMER_ATTR_ALL = 0xffffffff;

/** Upper bound of callbacks in one run_timers pass before we call it a storm. */
export const TIMER_RUN_MAX = 1_000_000;

export type TimerCb = (opaque: unknown) => void;

/** @qemu include/qemu/timer.h QEMUTimer */
export interface QEMUTimer {
  name: string;
  /** Expiry in ns; -1 when not pending. */
  expireNs: number;
  scale: number;
  attributes: number;
  cb: TimerCb;
  opaque: unknown;
  list: TimerList;
  /** Neighbours in the bucket, armed just before and after it (QEMU's ts->next); null at the ends. */
  prev: QEMUTimer | null;
  next: QEMUTimer | null;
}

/** @qemu util/qemu-timer.c QEMUTimerList */
export interface TimerList {
  type: ClockType;
  clocks: ClocksState;
  /** The pending timers in order. */
  queue: TimerQueue;
  /** Called when a timer becomes the head (timerlist_notify). */
  notify: (type: ClockType) => void;
}

/** @qemu QEMUTimerListGroup */
export interface TimerListGroup {
  lists: [TimerList, TimerList, TimerList, TimerList];
}

/** Limit error for storms: says which limit, the time, and the last callback run. */
export class LoopLimitError extends Error {
  override name = 'LoopLimitError';
}

export function timerListGroupCreate(clocks: ClocksState, notify: (type: ClockType) => void): TimerListGroup {
  const mk = (type: ClockType): TimerList => ({ type, clocks, queue: timerQueueCreate(), notify });
  return { lists: [mk(0), mk(1), mk(2), mk(3)] };
}

/**
 * A QEMUTimer's storage. It is a class only so that V8 allocates timers through a constructor:
 * an object literal's allocation site is pretenured once most of its objects survive a
 * scavenge (100,000 armed timers do), and allocating in the old generation made arming twice
 * as slow. It has fields and no methods, so a timer is still plain data (STYLE.md §5).
 */
class TimerStorage implements QEMUTimer {
  expireNs = -1;
  prev: QEMUTimer | null = null;
  next: QEMUTimer | null = null;
  constructor(
    public name: string,
    public scale: number,
    public attributes: number,
    public cb: TimerCb,
    public opaque: unknown,
    public list: TimerList,
  ) {}
}

/** Create a timer on `group`'s list for `type`. @qemu timer_new_full */
export function timerNew(group: TimerListGroup, type: ClockType, scale: number, name: string, cb: TimerCb, opaque: unknown = null, attributes = 0): QEMUTimer {
  if (!(Number.isInteger(scale) && scale >= 1)) assert(false, `timer '${name}': scale ${scale} is not a positive integer`);
  return new TimerStorage(name, scale, attributes, cb, opaque, group.lists[type]);
}

/** The timer that expires first, or null. */
export function timerlistHead(tl: TimerList): QEMUTimer | null {
  return timerQueueHead(tl.queue);
}

/** Deadline of the head in ns, or -1 when the list is empty. */
export function timerlistHeadExpireNs(tl: TimerList): number {
  return timerQueueHeadNs(tl.queue);
}

/** @qemu timer_pending */
export function timerPending(ts: QEMUTimer): boolean {
  return ts.expireNs >= 0;
}

/** @qemu timer_expired */
export function timerExpired(ts: QEMUTimer, currentNs: number): boolean {
  return ts.expireNs >= 0 && ts.expireNs <= currentNs;
}

/** Expiry in ns, or -1. @qemu timer_expire_time_ns */
export function timerExpireTimeNs(ts: QEMUTimer): number {
  return ts.expireNs;
}

/** @qemu timer_del */
export function timerDel(ts: QEMUTimer): void {
  if (ts.expireNs < 0) return;
  timerQueueRemove(ts.list.queue, ts);
  ts.expireNs = -1;
}

/** Arm; returns whether `ts` became the head of its list. @qemu timer_mod_ns_locked */
function insert(ts: QEMUTimer, expireNs: number): boolean {
  const tl = ts.list;
  if (ts.expireNs >= 0) timerQueueRemove(tl.queue, ts); // timer_del_locked
  ts.expireNs = expireNs;
  return timerQueueInsert(tl.queue, ts, expireNs);
}

/**
 * Arm `ts` to expire at `expireNs` (absolute, ns). A timer that becomes the head of its list
 * notifies the loop. Negative, fractional or unsafe values are programmer errors (QEMU clamps
 * negatives to 0; detvm refuses them so a wrong computation is caught where it happens).
 * @qemu util/qemu-timer.c timer_mod_ns
 */
export function timerModNs(ts: QEMUTimer, expireNs: number): void {
  if (!Number.isSafeInteger(expireNs) || expireNs < 0) assertNs(expireNs, `timer '${ts.name}' deadline`);
  if (insert(ts, expireNs)) ts.list.notify(ts.list.type);
}

/** Arm in the timer's own scale units. @qemu timer_mod */
export function timerMod(ts: QEMUTimer, expire: number): void {
  assertNs(expire, `timer '${ts.name}' deadline (scale ${ts.scale})`);
  timerModNs(ts, expire * ts.scale);
}

/** Modify only if not pending or earlier than now. @qemu timer_mod_anticipate_ns */
export function timerModAnticipateNs(ts: QEMUTimer, expireNs: number): void {
  if (!Number.isSafeInteger(expireNs) || expireNs < 0) assertNs(expireNs, `timer '${ts.name}' deadline`);
  if (ts.expireNs >= 0 && ts.expireNs <= expireNs) return;
  timerModNs(ts, expireNs);
}

/** @qemu timer_mod_anticipate */
export function timerModAnticipate(ts: QEMUTimer, expire: number): void {
  assertNs(expire, `timer '${ts.name}' deadline (scale ${ts.scale})`);
  timerModAnticipateNs(ts, expire * ts.scale);
}

function clockEnabled(tl: TimerList): boolean {
  return tl.clocks.enabled[tl.type];
}

/**
 * ns until the first timer expires (>= 0), or -1 if none or the clock is disabled. Timers with an
 * attribute outside `attrMask` are skipped (~QEMU_TIMER_ATTR_EXTERNAL leaves external ones out).
 * @qemu timerlist_deadline_ns, qemu_clock_deadline_ns_all
 */
export function timerlistDeadlineNs(tl: TimerList, attrMask = QEMU_TIMER_ATTR_ALL): number {
  if (!clockEnabled(tl)) return -1;
  const q = tl.queue;
  const expire = attrMask === QEMU_TIMER_ATTR_ALL ? timerQueueHeadNs(q) : timerQueueSoonestNs(q, attrMask);
  if (expire < 0) return -1;
  const d = expire - qemuClockGetNs(tl.clocks, tl.type);
  return d <= 0 ? 0 : d;
}

/**
 * Soonest deadline of `type` over the given groups (main_loop_tlg and the AioContexts' groups:
 * QEMU's clock keeps a list of all its timer lists). @qemu qemu_clock_deadline_ns_all
 */
export function qemuClockDeadlineNsAll(groups: readonly TimerListGroup[], type: ClockType, attrMask = QEMU_TIMER_ATTR_ALL): number {
  let deadline = -1;
  for (const g of groups) deadline = qemuSoonestTimeout(deadline, timerlistDeadlineNs(g.lists[type], attrMask));
  return deadline;
}

/** Whether the main loop accounts for `type`'s deadlines. @qemu qemu_clock_use_for_deadline */
export function qemuClockUseForDeadline(clocks: ClocksState, type: ClockType): boolean {
  return !(clocks.icountEnabled && type === QEMU_CLOCK_VIRTUAL);
}

/** Soonest deadline over the group's clocks used for deadlines. @qemu timerlistgroup_deadline_ns */
export function timerlistgroupDeadlineNs(g: TimerListGroup): number {
  let deadline = -1;
  for (let type = 0; type < QEMU_CLOCK_MAX; type++) {
    const tl = g.lists[type]!;
    // An empty list has no deadline (timerlistDeadlineNs returns -1): the common case, and the
    // main loop asks once per iteration for each of its groups (prepare and check).
    if (tl.queue.count === 0) continue;
    if (qemuClockUseForDeadline(tl.clocks, tl.type)) {
      deadline = qemuSoonestTimeout(deadline, timerlistDeadlineNs(tl));
    }
  }
  return deadline;
}

/**
 * Run every expired timer of `tl`. The current time is read once; a callback that re-arms its
 * timer at or before it fires again in this pass. Returns whether any timer ran.
 * @qemu util/qemu-timer.c timerlist_run_timers
 */
export function timerlistRunTimers(m: Traced, tl: TimerList): boolean {
  const q = tl.queue;
  if (!clockEnabled(tl) || q.count === 0) return false;
  const currentNs = qemuClockGetNs(tl.clocks, tl.type);
  let progress = false;
  for (let n = 0; ; n++) {
    const head = timerQueueHeadNs(q);
    if (head < 0 || head > currentNs) break;
    if (n >= TIMER_RUN_MAX) {
      throw new LoopLimitError(
        `timer storm: ${TIMER_RUN_MAX} timer callbacks on clock ${CLOCK_NAMES[tl.type]} in one pass at ${currentNs} ns; last callback: ${m.trace.lastKind} ${m.trace.lastDispatched}`,
      );
    }
    const ts = timerQueuePopHead(q);
    ts.expireNs = -1;
    m.trace.lastDispatched = ts.name;
    m.trace.lastKind = 'timer';
    if (m.trace.level >= TRACE_CONTROL) {
      traceEnter(m, TRACE_CONTROL, ts.name, { clock: CLOCK_NAMES[tl.type] });
      ts.cb(ts.opaque);
      traceExit(m, true, ts.name);
    } else {
      ts.cb(ts.opaque);
    }
    progress = true;
  }
  return progress;
}

/** Number of pending timers on a list. */
export function timerlistCount(tl: TimerList): number {
  return tl.queue.count;
}
