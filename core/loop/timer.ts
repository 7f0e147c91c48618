// Timer lists with QEMU's semantics (util/qemu-timer.c): one list per clock type in a group,
// timer_mod / timer_mod_anticipate / timer_del, deadlines, and run_timers. Each list is a
// min-heap (4-ary) ordered by (expireNs, seq), where seq is a per-machine counter taken at every arming,
// so equal deadlines fire FIFO in arming order (QEMU inserts after all timers with expire <= new).
// Deletion is lazy: re-arming or deleting a timer leaves its old heap entry behind, recognised
// as stale because the entry's seq is no longer the timer's; stale heads are dropped when seen
// and the heap is rebuilt when stale entries outnumber live ones. Sifting then touches only the
// heap's own arrays, never the timer objects (this is what makes 100,000 timers cheap).
// Invariants: a timer is pending iff expireNs >= 0, and then exactly one entry has its seq;
// `live` counts pending timers.

import { assert, assertNs } from '../util/index.ts';
import {
  type ClockType, type ClocksState, QEMU_CLOCK_VIRTUAL, QEMU_CLOCK_MAX, qemuClockGetNs,
  qemuSoonestTimeout, CLOCK_NAMES,
} from './clock.ts';
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
  /** Sequence number of the current arming (identifies its heap entry); -1 when not pending. */
  seq: number;
}

export interface SeqCounter {
  n: number;
}

/** @qemu util/qemu-timer.c QEMUTimerList */
export interface TimerList {
  type: ClockType;
  clocks: ClocksState;
  /** Heap entries: items[i] armed at (ks[2i] ns, seq ks[2i+1]); stale when that seq is no longer items[i].seq. */
  items: QEMUTimer[];
  ks: Float64Array;
  size: number;
  /** Pending timers (entries that are not stale). */
  live: number;
  seq: SeqCounter;
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

const HEAP_INITIAL = 16;
/** Rebuild when stale entries exceed live ones and this floor. */
const STALE_REBUILD_MIN = 64;

export function timerListGroupCreate(clocks: ClocksState, seq: SeqCounter, notify: (type: ClockType) => void): TimerListGroup {
  const mk = (type: ClockType): TimerList => ({
    type, clocks, items: [], ks: new Float64Array(2 * HEAP_INITIAL), size: 0, live: 0,
    seq, notify,
  });
  return { lists: [mk(0), mk(1), mk(2), mk(3)] };
}

/** Create a timer on `group`'s list for `type`. @qemu timer_new_full */
export function timerNew(group: TimerListGroup, type: ClockType, scale: number, name: string, cb: TimerCb, opaque: unknown = null, attributes = 0): QEMUTimer {
  if (!(Number.isInteger(scale) && scale >= 1)) assert(false, `timer '${name}': scale ${scale} is not a positive integer`);
  return { name, expireNs: -1, scale, attributes, cb, opaque, list: group.lists[type], seq: -1 };
}

// The heap is 4-ary with each entry's (key, seq) pair interleaved in one Float64Array, so a
// node's four children share a cache line: a pop from 100,000 timers touches ~9 lines, not ~50.

function siftUp(tl: TimerList, i: number): void {
  const items = tl.items;
  const ks = tl.ks;
  const t = items[i]!;
  const key = ks[2 * i]!;
  const sq = ks[2 * i + 1]!;
  while (i > 0) {
    const p = (i - 1) >> 2;
    const pk = ks[2 * p]!;
    const ps = ks[2 * p + 1]!;
    // Stop unless (key, sq) is strictly before the parent: seq is unique, so the order is total.
    if (key > pk || (key === pk && sq > ps)) break;
    items[i] = items[p]!;
    ks[2 * i] = pk;
    ks[2 * i + 1] = ps;
    i = p;
  }
  items[i] = t;
  ks[2 * i] = key;
  ks[2 * i + 1] = sq;
}

function siftDown(tl: TimerList, i: number): void {
  const items = tl.items;
  const ks = tl.ks;
  const n = tl.size;
  const t = items[i]!;
  const key = ks[2 * i]!;
  const sq = ks[2 * i + 1]!;
  for (;;) {
    const first = 4 * i + 1;
    if (first >= n) break;
    let c = first;
    let ck = ks[2 * first]!;
    let cs = ks[2 * first + 1]!;
    const end = first + 4 < n ? first + 4 : n;
    for (let j = first + 1; j < end; j++) {
      const jk = ks[2 * j]!;
      if (jk < ck || (jk === ck && ks[2 * j + 1]! < cs)) {
        c = j;
        ck = jk;
        cs = ks[2 * j + 1]!;
      }
    }
    if (ck > key || (ck === key && cs > sq)) break;
    items[i] = items[c]!;
    ks[2 * i] = ck;
    ks[2 * i + 1] = cs;
    i = c;
  }
  items[i] = t;
  ks[2 * i] = key;
  ks[2 * i + 1] = sq;
}

/** Remove the heap's top entry (stale or not). */
function popTop(tl: TimerList): void {
  const last = --tl.size;
  const moved = tl.items.pop()!;
  if (last > 0) {
    tl.items[0] = moved;
    tl.ks[0] = tl.ks[2 * last]!;
    tl.ks[1] = tl.ks[2 * last + 1]!;
    siftDown(tl, 0);
  }
}

function isLive(tl: TimerList, i: number): boolean {
  // timerDel and firing set seq to -1, and each arming takes a new seq: one comparison decides.
  return tl.items[i]!.seq === tl.ks[2 * i + 1];
}

/** Drop stale entries from the top so that items[0], if any, is a pending timer. */
function cleanTop(tl: TimerList): void {
  while (tl.size > 0 && !isLive(tl, 0)) popTop(tl);
}

/** Rebuild the heap from its live entries (O(n)) once stale ones dominate. */
function maybeCompact(tl: TimerList): void {
  const stale = tl.size - tl.live;
  if (stale <= STALE_REBUILD_MIN || stale <= tl.live) return;
  let n = 0;
  for (let i = 0; i < tl.size; i++) {
    if (!isLive(tl, i)) continue;
    tl.items[n] = tl.items[i]!;
    tl.ks[2 * n] = tl.ks[2 * i]!;
    tl.ks[2 * n + 1] = tl.ks[2 * i + 1]!;
    n++;
  }
  tl.items.length = n;
  tl.size = n;
  for (let i = (n - 2) >> 2; i >= 0; i--) siftDown(tl, i);
  if (tl.live !== n) assert(false, `timer list ${CLOCK_NAMES[tl.type]}: ${n} live entries, expected ${tl.live}`);
}

function heapPush(tl: TimerList, ts: QEMUTimer): void {
  if (2 * tl.size === tl.ks.length) {
    const ks = new Float64Array(tl.ks.length * 2);
    ks.set(tl.ks);
    tl.ks = ks;
  }
  const i = tl.size++;
  tl.items.push(ts);
  tl.ks[2 * i] = ts.expireNs;
  tl.ks[2 * i + 1] = ts.seq;
  siftUp(tl, i);
}

/** The timer that expires first, or null. */
export function timerlistHead(tl: TimerList): QEMUTimer | null {
  cleanTop(tl);
  return tl.size > 0 ? tl.items[0]! : null;
}

/** Deadline of the head in ns, or -1 when the list is empty. */
export function timerlistHeadExpireNs(tl: TimerList): number {
  cleanTop(tl);
  return tl.size > 0 ? tl.ks[0]! : -1;
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
  ts.expireNs = -1;
  ts.seq = -1; // its heap entry is now stale
  ts.list.live--;
  maybeCompact(ts.list);
}

/** Arm; returns whether `ts` became the head of its list. */
function insert(ts: QEMUTimer, expireNs: number): boolean {
  const tl = ts.list;
  if (ts.expireNs >= 0) tl.live--; // the previous arming's entry becomes stale
  ts.expireNs = expireNs;
  ts.seq = tl.seq.n++;
  tl.live++;
  heapPush(tl, ts);
  maybeCompact(tl);
  cleanTop(tl);
  return tl.items[0] === ts && tl.ks[1] === ts.seq;
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
  cleanTop(tl);
  if (tl.size === 0) return -1;
  let expire: number;
  if (attrMask === QEMU_TIMER_ATTR_ALL) {
    expire = tl.ks[0]!;
  } else {
    expire = -1;
    for (let i = 0; i < tl.size; i++) {
      if (!isLive(tl, i)) continue;
      const t = tl.items[i]!;
      if ((t.attributes & ~attrMask) !== 0) continue; // it has an attribute outside the mask
      if (expire < 0 || t.expireNs < expire) expire = t.expireNs;
    }
    if (expire < 0) return -1;
  }
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
  if (!clockEnabled(tl) || tl.live === 0) return false;
  const currentNs = qemuClockGetNs(tl.clocks, tl.type);
  let progress = false;
  for (let n = 0; ; n++) {
    cleanTop(tl);
    if (tl.size === 0 || tl.ks[0]! > currentNs) break;
    const ts = tl.items[0]!;
    if (n >= TIMER_RUN_MAX) {
      throw new LoopLimitError(
        `timer storm: ${TIMER_RUN_MAX} timer callbacks on clock ${CLOCK_NAMES[tl.type]} in one pass at ${currentNs} ns; last callback: ${m.trace.lastKind} ${m.trace.lastDispatched}`,
      );
    }
    popTop(tl);
    ts.expireNs = -1;
    ts.seq = -1;
    tl.live--;
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
  return tl.live;
}
