// Timer lists with QEMU's semantics (util/qemu-timer.c): one list per clock type in a group,
// timer_mod / timer_mod_anticipate / timer_del, deadlines, and run_timers. QEMU keeps each list
// sorted by (expire, arming order): a timer armed at a deadline others already have goes after
// them. detvm keeps the same order in buckets, one per distinct deadline, each a FIFO of armings
// in order, and a 4-ary min-heap of the buckets by deadline (as Node.js groups its timers into
// lists, and timer wheels do): timers that share a deadline cost one heap entry between them, and
// the heap never compares arming order. A per-machine counter (`seq`) numbers every arming.
// Deletion is lazy: re-arming or deleting a timer leaves its old bucket entry behind, stale
// because the entry's seq is no longer the timer's; stale entries are skipped when they reach the
// front, and everything is rebuilt when stale entries outnumber live ones.
// Invariants: a timer is pending iff expireNs >= 0, and then exactly one bucket entry (in the
// bucket of expireNs) has its seq; `live` counts pending timers, `entries` unconsumed entries.

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
  /** Sequence number of the current arming (identifies its bucket entry); -1 when not pending. */
  seq: number;
}

export interface SeqCounter {
  n: number;
}

/** The armings at one deadline, oldest first; entries before `head` are consumed. */
interface Bucket {
  key: number;
  timers: QEMUTimer[];
  /** seqs[i] is the seq timers[i] had when armed; stale once the timer's seq differs. */
  seqs: number[];
  head: number;
}

/** @qemu util/qemu-timer.c QEMUTimerList */
export interface TimerList {
  type: ClockType;
  clocks: ClocksState;
  /** Min-heap of buckets by deadline; keys[i] is heap[i].key (distinct keys). */
  heap: Bucket[];
  keys: Float64Array;
  /** The bucket of each deadline in the heap. */
  byKey: Map<number, Bucket>;
  /** Unconsumed bucket entries, stale ones included. */
  entries: number;
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
    type, clocks, heap: [], keys: new Float64Array(HEAP_INITIAL), byKey: new Map(), entries: 0, live: 0,
    seq, notify,
  });
  return { lists: [mk(0), mk(1), mk(2), mk(3)] };
}

/** Create a timer on `group`'s list for `type`. @qemu timer_new_full */
export function timerNew(group: TimerListGroup, type: ClockType, scale: number, name: string, cb: TimerCb, opaque: unknown = null, attributes = 0): QEMUTimer {
  if (!(Number.isInteger(scale) && scale >= 1)) assert(false, `timer '${name}': scale ${scale} is not a positive integer`);
  return { name, expireNs: -1, scale, attributes, cb, opaque, list: group.lists[type], seq: -1 };
}

// The heap is 4-ary over a Float64Array of keys, so a node's four children share a cache line.

function siftUp(tl: TimerList, i: number): void {
  const heap = tl.heap;
  const keys = tl.keys;
  const b = heap[i]!;
  const key = keys[i]!;
  while (i > 0) {
    const p = (i - 1) >> 2;
    const pk = keys[p]!;
    if (key > pk) break; // keys are distinct
    heap[i] = heap[p]!;
    keys[i] = pk;
    i = p;
  }
  heap[i] = b;
  keys[i] = key;
}

function siftDown(tl: TimerList, i: number): void {
  const heap = tl.heap;
  const keys = tl.keys;
  const n = heap.length;
  const b = heap[i]!;
  const key = keys[i]!;
  for (;;) {
    const first = 4 * i + 1;
    if (first >= n) break;
    let c = first;
    let ck = keys[first]!;
    const end = first + 4 < n ? first + 4 : n;
    for (let j = first + 1; j < end; j++) {
      const jk = keys[j]!;
      if (jk < ck) {
        c = j;
        ck = jk;
      }
    }
    if (ck > key) break;
    heap[i] = heap[c]!;
    keys[i] = ck;
    i = c;
  }
  heap[i] = b;
  keys[i] = key;
}

/** Remove the top bucket (all of its entries consumed or stale). */
function popBucket(tl: TimerList): void {
  const top = tl.heap[0]!;
  tl.byKey.delete(top.key);
  const moved = tl.heap.pop()!;
  const last = tl.heap.length;
  if (last > 0) {
    tl.heap[0] = moved;
    tl.keys[0] = tl.keys[last]!;
    siftDown(tl, 0);
  }
}

function pushBucket(tl: TimerList, key: number): Bucket {
  const b: Bucket = { key, timers: [], seqs: [], head: 0 };
  const i = tl.heap.length;
  if (i === tl.keys.length) {
    const keys = new Float64Array(tl.keys.length * 2);
    keys.set(tl.keys);
    tl.keys = keys;
  }
  tl.heap.push(b);
  tl.keys[i] = key;
  tl.byKey.set(key, b);
  siftUp(tl, i);
  return b;
}

/** Skip stale entries at the front so that the top bucket's head, if any, is a pending timer. */
function cleanTop(tl: TimerList): void {
  const heap = tl.heap;
  while (heap.length > 0) {
    const b = heap[0]!;
    const timers = b.timers;
    const seqs = b.seqs;
    let h = b.head;
    while (h < timers.length && timers[h]!.seq !== seqs[h]) h++;
    tl.entries -= h - b.head;
    b.head = h;
    if (h < timers.length) return;
    popBucket(tl);
  }
}

/** Rebuild the buckets and the heap from the live entries (O(n)) once stale ones dominate. */
function maybeCompact(tl: TimerList): void {
  const stale = tl.entries - tl.live;
  if (stale <= STALE_REBUILD_MIN || stale <= tl.live) return;
  const old = tl.heap;
  tl.heap = [];
  tl.byKey.clear();
  let n = 0;
  for (const b of old) {
    const timers: QEMUTimer[] = [];
    const seqs: number[] = [];
    for (let i = b.head; i < b.timers.length; i++) {
      const t = b.timers[i]!;
      if (t.seq !== b.seqs[i]) continue;
      timers.push(t);
      seqs.push(b.seqs[i]!);
    }
    if (timers.length === 0) continue;
    b.timers = timers;
    b.seqs = seqs;
    b.head = 0;
    tl.heap.push(b);
    tl.keys[tl.heap.length - 1] = b.key;
    tl.byKey.set(b.key, b);
    n += timers.length;
  }
  for (let i = (tl.heap.length - 2) >> 2; i >= 0; i--) siftDown(tl, i);
  tl.entries = n;
  if (tl.live !== n) assert(false, `timer list ${CLOCK_NAMES[tl.type]}: ${n} live entries, expected ${tl.live}`);
}

/** The timer that expires first, or null. */
export function timerlistHead(tl: TimerList): QEMUTimer | null {
  cleanTop(tl);
  const b = tl.heap[0];
  return b ? b.timers[b.head]! : null;
}

/** Deadline of the head in ns, or -1 when the list is empty. */
export function timerlistHeadExpireNs(tl: TimerList): number {
  cleanTop(tl);
  return tl.heap.length > 0 ? tl.keys[0]! : -1;
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
  const b = tl.byKey.get(expireNs) ?? pushBucket(tl, expireNs);
  b.timers.push(ts);
  b.seqs.push(ts.seq);
  tl.entries++;
  maybeCompact(tl);
  cleanTop(tl);
  const top = tl.heap[0]!;
  return top.timers[top.head] === ts;
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
  if (tl.heap.length === 0) return -1;
  let expire: number;
  if (attrMask === QEMU_TIMER_ATTR_ALL) {
    expire = tl.keys[0]!;
  } else {
    expire = -1;
    for (const b of tl.heap) {
      for (let i = b.head; i < b.timers.length; i++) {
        const t = b.timers[i]!;
        if (t.seq !== b.seqs[i]) continue;
        if ((t.attributes & ~attrMask) !== 0) continue; // it has an attribute outside the mask
        if (expire < 0 || t.expireNs < expire) expire = t.expireNs;
      }
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
    if (tl.heap.length === 0 || tl.keys[0]! > currentNs) break;
    const b = tl.heap[0]!;
    const ts = b.timers[b.head]!;
    if (n >= TIMER_RUN_MAX) {
      throw new LoopLimitError(
        `timer storm: ${TIMER_RUN_MAX} timer callbacks on clock ${CLOCK_NAMES[tl.type]} in one pass at ${currentNs} ns; last callback: ${m.trace.lastKind} ${m.trace.lastDispatched}`,
      );
    }
    b.head++;
    tl.entries--;
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
