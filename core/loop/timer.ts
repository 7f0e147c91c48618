// Timer lists with QEMU's semantics (util/qemu-timer.c): one list per clock type in a group,
// timer_mod / timer_mod_anticipate / timer_del, deadlines, and run_timers. QEMU keeps each list
// sorted by (expire, arming order): a timer armed at a deadline others already have goes after
// them. detvm keeps the same order in buckets, one per distinct deadline, each a FIFO of armings,
// and a 4-ary min-heap of the buckets by deadline (as Node.js groups its timers into lists, and
// timer wheels do): timers that share a deadline cost one heap entry between them, and the heap
// never compares arming order. A per-machine counter (`seq`) numbers every arming.
// Storage is pooled in typed arrays (entries as linked lists, buckets by id), so arming and
// firing allocate nothing once the pools have grown: this is what makes 100,000 timers cheap.
// Deletion is lazy: re-arming or deleting a timer leaves its old entry behind, stale because the
// entry's seq is no longer the timer's; stale entries are dropped when they reach the front, and
// everything is compacted when stale entries outnumber live ones.
// Invariants: a timer is pending iff expireNs >= 0, and then exactly one entry (in the bucket of
// expireNs) has its seq; `live` counts pending timers, `entries` entries in buckets.

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
  /** Sequence number of the current arming (identifies its entry); -1 when not pending. */
  seq: number;
}

export interface SeqCounter {
  n: number;
}

/** @qemu util/qemu-timer.c QEMUTimerList */
export interface TimerList {
  type: ClockType;
  clocks: ClocksState;
  /** Entry pool: the timer armed, its seq at arming, the next entry of its bucket (-1: last). */
  eTimer: (QEMUTimer | null)[];
  eSeq: Float64Array;
  eNext: Int32Array;
  /** Free entries, linked through eNext (-1: none); entries never used start at eUsed. */
  eFree: number;
  eUsed: number;
  /** Bucket pool by id: deadline, first and last entry (-1: empty); free ids linked through bHead. */
  bKey: Float64Array;
  bHead: Int32Array;
  bTail: Int32Array;
  bFree: number;
  bUsed: number;
  /** Min-heap of bucket ids by deadline (keys distinct): hKey[i] is bKey[hId[i]]. */
  hId: Int32Array;
  hKey: Float64Array;
  size: number;
  /** The bucket id of each deadline in the heap. */
  byKey: Map<number, number>;
  /** Entries in buckets, stale ones included. */
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

const POOL_INITIAL = 16;
/** Compact when stale entries exceed live ones and this floor. */
const STALE_REBUILD_MIN = 64;

export function timerListGroupCreate(clocks: ClocksState, seq: SeqCounter, notify: (type: ClockType) => void): TimerListGroup {
  const mk = (type: ClockType): TimerList => ({
    type, clocks,
    eTimer: [], eSeq: new Float64Array(POOL_INITIAL), eNext: new Int32Array(POOL_INITIAL), eFree: -1, eUsed: 0,
    bKey: new Float64Array(POOL_INITIAL), bHead: new Int32Array(POOL_INITIAL), bTail: new Int32Array(POOL_INITIAL),
    bFree: -1, bUsed: 0,
    hId: new Int32Array(POOL_INITIAL), hKey: new Float64Array(POOL_INITIAL), size: 0,
    byKey: new Map(), entries: 0, live: 0, seq, notify,
  });
  return { lists: [mk(0), mk(1), mk(2), mk(3)] };
}

/** Create a timer on `group`'s list for `type`. @qemu timer_new_full */
export function timerNew(group: TimerListGroup, type: ClockType, scale: number, name: string, cb: TimerCb, opaque: unknown = null, attributes = 0): QEMUTimer {
  if (!(Number.isInteger(scale) && scale >= 1)) assert(false, `timer '${name}': scale ${scale} is not a positive integer`);
  return { name, expireNs: -1, scale, attributes, cb, opaque, list: group.lists[type], seq: -1 };
}

function grownF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}

function grownI32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/** A free entry holding (ts, its seq), last of no list yet. */
function entryAlloc(tl: TimerList, ts: QEMUTimer): number {
  let e = tl.eFree;
  if (e >= 0) {
    tl.eFree = tl.eNext[e]!;
    tl.eTimer[e] = ts;
  } else {
    e = tl.eUsed++;
    if (e === tl.eSeq.length) {
      tl.eSeq = grownF64(tl.eSeq, 2 * e);
      tl.eNext = grownI32(tl.eNext, 2 * e);
    }
    tl.eTimer.push(ts);
  }
  tl.eSeq[e] = ts.seq;
  tl.eNext[e] = -1;
  return e;
}

function entryFree(tl: TimerList, e: number): void {
  tl.eTimer[e] = null;
  tl.eNext[e] = tl.eFree;
  tl.eFree = e;
}

function entryLive(tl: TimerList, e: number): boolean {
  return tl.eTimer[e]!.seq === tl.eSeq[e];
}

// The heap is 4-ary over a Float64Array of keys, so a node's four children share a cache line.

function siftUp(tl: TimerList, i: number): void {
  const hId = tl.hId;
  const hKey = tl.hKey;
  const id = hId[i]!;
  const key = hKey[i]!;
  while (i > 0) {
    const p = (i - 1) >> 2;
    const pk = hKey[p]!;
    if (key > pk) break; // keys are distinct
    hId[i] = hId[p]!;
    hKey[i] = pk;
    i = p;
  }
  hId[i] = id;
  hKey[i] = key;
}

function siftDown(tl: TimerList, i: number): void {
  const hId = tl.hId;
  const hKey = tl.hKey;
  const n = tl.size;
  const id = hId[i]!;
  const key = hKey[i]!;
  for (;;) {
    const first = 4 * i + 1;
    if (first >= n) break;
    let c = first;
    let ck = hKey[first]!;
    const end = first + 4 < n ? first + 4 : n;
    for (let j = first + 1; j < end; j++) {
      const jk = hKey[j]!;
      if (jk < ck) {
        c = j;
        ck = jk;
      }
    }
    if (ck > key) break;
    hId[i] = hId[c]!;
    hKey[i] = ck;
    i = c;
  }
  hId[i] = id;
  hKey[i] = key;
}

/** A new empty bucket for `key`, in the heap and the map. */
function bucketPush(tl: TimerList, key: number): number {
  let b = tl.bFree;
  if (b >= 0) {
    tl.bFree = tl.bHead[b]!;
  } else {
    b = tl.bUsed++;
    if (b === tl.bKey.length) {
      tl.bKey = grownF64(tl.bKey, 2 * b);
      tl.bHead = grownI32(tl.bHead, 2 * b);
      tl.bTail = grownI32(tl.bTail, 2 * b);
      tl.hId = grownI32(tl.hId, 2 * b);
      tl.hKey = grownF64(tl.hKey, 2 * b);
    }
  }
  tl.bKey[b] = key;
  tl.bHead[b] = -1;
  tl.bTail[b] = -1;
  const i = tl.size++;
  tl.hId[i] = b;
  tl.hKey[i] = key;
  siftUp(tl, i);
  tl.byKey.set(key, b);
  return b;
}

/** Remove the top bucket (empty by now) from the heap and the map, and free its id. */
function bucketPop(tl: TimerList): void {
  const b = tl.hId[0]!;
  tl.byKey.delete(tl.bKey[b]!);
  tl.bHead[b] = tl.bFree;
  tl.bFree = b;
  const last = --tl.size;
  if (last > 0) {
    tl.hId[0] = tl.hId[last]!;
    tl.hKey[0] = tl.hKey[last]!;
    siftDown(tl, 0);
  }
}

/** Drop stale entries at the front so that the top bucket's head, if any, is a pending timer. */
function cleanTop(tl: TimerList): void {
  while (tl.size > 0) {
    const b = tl.hId[0]!;
    let e = tl.bHead[b]!;
    while (e >= 0 && !entryLive(tl, e)) {
      const next = tl.eNext[e]!;
      entryFree(tl, e);
      tl.entries--;
      e = next;
    }
    tl.bHead[b] = e;
    if (e >= 0) return;
    tl.bTail[b] = -1;
    bucketPop(tl);
  }
}

/** Drop every stale entry and empty bucket (O(n)) once stale entries dominate. */
function maybeCompact(tl: TimerList): void {
  const stale = tl.entries - tl.live;
  if (stale <= STALE_REBUILD_MIN || stale <= tl.live) return;
  let n = 0;
  let kept = 0;
  for (let i = 0; i < tl.size; i++) {
    const b = tl.hId[i]!;
    let prev = -1;
    let e = tl.bHead[b]!;
    tl.bHead[b] = -1;
    while (e >= 0) {
      const next = tl.eNext[e]!;
      if (entryLive(tl, e)) {
        if (prev < 0) tl.bHead[b] = e;
        else tl.eNext[prev] = e;
        prev = e;
        n++;
      } else {
        entryFree(tl, e);
      }
      e = next;
    }
    if (prev >= 0) {
      tl.eNext[prev] = -1;
      tl.bTail[b] = prev;
      tl.hId[kept] = b;
      tl.hKey[kept] = tl.bKey[b]!;
      kept++;
    } else {
      tl.bTail[b] = -1;
      tl.byKey.delete(tl.bKey[b]!);
      tl.bHead[b] = tl.bFree;
      tl.bFree = b;
    }
  }
  tl.size = kept;
  for (let i = (kept - 2) >> 2; i >= 0; i--) siftDown(tl, i);
  tl.entries = n;
  if (tl.live !== n) assert(false, `timer list ${CLOCK_NAMES[tl.type]}: ${n} live entries, expected ${tl.live}`);
}

/** The timer that expires first, or null. */
export function timerlistHead(tl: TimerList): QEMUTimer | null {
  cleanTop(tl);
  return tl.size > 0 ? tl.eTimer[tl.bHead[tl.hId[0]!]!]! : null;
}

/** Deadline of the head in ns, or -1 when the list is empty. */
export function timerlistHeadExpireNs(tl: TimerList): number {
  cleanTop(tl);
  return tl.size > 0 ? tl.hKey[0]! : -1;
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
  let b = tl.byKey.get(expireNs);
  if (b === undefined) b = bucketPush(tl, expireNs);
  const e = entryAlloc(tl, ts);
  const tail = tl.bTail[b]!;
  if (tail < 0) tl.bHead[b] = e;
  else tl.eNext[tail] = e;
  tl.bTail[b] = e;
  tl.entries++;
  maybeCompact(tl);
  cleanTop(tl);
  return tl.eTimer[tl.bHead[tl.hId[0]!]!] === ts;
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
    expire = tl.hKey[0]!;
  } else {
    expire = -1;
    for (let i = 0; i < tl.size; i++) {
      for (let e = tl.bHead[tl.hId[i]!]!; e >= 0; e = tl.eNext[e]!) {
        if (!entryLive(tl, e)) continue;
        const t = tl.eTimer[e]!;
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
    if (tl.size === 0 || tl.hKey[0]! > currentNs) break;
    const b = tl.hId[0]!;
    const e = tl.bHead[b]!;
    const ts = tl.eTimer[e]!;
    if (n >= TIMER_RUN_MAX) {
      throw new LoopLimitError(
        `timer storm: ${TIMER_RUN_MAX} timer callbacks on clock ${CLOCK_NAMES[tl.type]} in one pass at ${currentNs} ns; last callback: ${m.trace.lastKind} ${m.trace.lastDispatched}`,
      );
    }
    tl.bHead[b] = tl.eNext[e]!;
    if (tl.bHead[b]! < 0) tl.bTail[b] = -1;
    entryFree(tl, e);
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
