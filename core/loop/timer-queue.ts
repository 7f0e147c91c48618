// The ordered store behind one timer list (timer.ts): pending timers in QEMU's order, by expiry
// and then arming order. Timers that share a deadline form a bucket, a FIFO linked through the
// timers themselves (prev/next, QEMU's ts->next); a 4-ary min-heap orders the buckets by deadline
// and a hash index finds a deadline's bucket. Timers sharing a deadline thus cost one heap entry,
// and the heap never compares arming order. Storage is typed arrays pooled by bucket id, so once
// grown, arming and firing allocate nothing.
// Invariants: a pending timer is in the bucket of its expireNs; a bucket is in the heap and the
// index iff it is not empty; hId[bPos[b]] === b; deadlines in the heap are distinct.

import { assert, AssertionError } from '../util/index.ts';
import type { QEMUTimer } from './timer.ts';

export interface TimerQueue {
  /** Buckets by id: deadline, and first and last timer (null: empty or free). */
  bKey: Float64Array;
  bHead: (QEMUTimer | null)[];
  bTail: (QEMUTimer | null)[];
  /** Heap position of each bucket; for a free id, the next free id (-1: none). */
  bPos: Int32Array;
  bFree: number;
  /** Ids never used start here. */
  bUsed: number;
  /** Min-heap of bucket ids by deadline: hKey[i] is bKey[hId[i]], so sifting reads one array. */
  hId: Int32Array;
  hKey: Float64Array;
  size: number;
  /**
   * Index deadline → bucket id: open addressing, linear probing, at most half full. Slot s holds
   * the deadline xKey[s] of bucket xId[s], or xId[s] === -1 when empty. 2^(32 - xShift) slots.
   */
  xKey: Float64Array;
  xId: Int32Array;
  xShift: number;
  /** Pending timers. */
  count: number;
}

const BUCKETS_INITIAL = 16;
const INDEX_SHIFT_INITIAL = 32 - 5; // 32 slots: twice BUCKETS_INITIAL

export function timerQueueCreate(): TimerQueue {
  return {
    bKey: new Float64Array(BUCKETS_INITIAL),
    bHead: [],
    bTail: [],
    bPos: new Int32Array(BUCKETS_INITIAL),
    bFree: -1,
    bUsed: 0,
    hId: new Int32Array(BUCKETS_INITIAL),
    hKey: new Float64Array(BUCKETS_INITIAL),
    size: 0,
    xKey: new Float64Array(1 << (32 - INDEX_SHIFT_INITIAL)),
    xId: new Int32Array(1 << (32 - INDEX_SHIFT_INITIAL)).fill(-1),
    xShift: INDEX_SHIFT_INITIAL,
    count: 0,
  };
}

/** The first pending timer (QEMU's active_timers), or null. */
export function timerQueueHead(q: TimerQueue): QEMUTimer | null {
  return q.size > 0 ? q.bHead[q.hId[0]!]! : null;
}

/** Deadline of the first pending timer in ns, or -1 when none is pending. */
export function timerQueueHeadNs(q: TimerQueue): number {
  return q.size > 0 ? q.hKey[0]! : -1;
}

/**
 * Append `ts` (not queued) to the bucket of `expireNs`, after the timers armed there before it.
 * Returns whether `ts` is now the head: no other pending timer expires at or before it.
 */
export function timerQueueInsert(q: TimerQueue, ts: QEMUTimer, expireNs: number): boolean {
  let b = indexFind(q, expireNs);
  if (b < 0) b = bucketAdd(q, expireNs);
  const tail = q.bTail[b]!;
  if (tail === null) q.bHead[b] = ts;
  else tail.next = ts;
  ts.prev = tail;
  ts.next = null;
  q.bTail[b] = ts;
  q.count++;
  return q.hId[0] === b && tail === null;
}

/** Unlink `ts` (queued) from its bucket; an emptied bucket leaves the heap and the index. */
export function timerQueueRemove(q: TimerQueue, ts: QEMUTimer): void {
  const b = indexFind(q, ts.expireNs);
  const prev = ts.prev;
  const next = ts.next;
  if (prev === null) q.bHead[b] = next;
  else prev.next = next;
  if (next === null) q.bTail[b] = prev;
  else next.prev = prev;
  ts.prev = null;
  ts.next = null;
  q.count--;
  if (prev === null && next === null) bucketRemove(q, b);
}

/** Unlink and return the head (the queue must not be empty). */
export function timerQueuePopHead(q: TimerQueue): QEMUTimer {
  const b = q.hId[0]!;
  const ts = q.bHead[b]!;
  const next = ts.next;
  q.bHead[b] = next;
  ts.next = null;
  q.count--;
  if (next === null) {
    q.bTail[b] = null;
    bucketRemove(q, b);
  } else {
    next.prev = null;
  }
  return ts;
}

/**
 * Soonest deadline among the timers with no attribute outside `attrMask`, or -1. Visits the
 * buckets in heap order, skipping those no sooner than the best so far, and stops in each at its
 * first match (O(n) at worst: only deadlines computed with an attribute mask need it).
 */
export function timerQueueSoonestNs(q: TimerQueue, attrMask: number): number {
  let soonest = -1;
  for (let i = 0; i < q.size; i++) {
    const key = q.hKey[i]!;
    if (soonest >= 0 && key >= soonest) continue;
    for (let t: QEMUTimer | null = q.bHead[q.hId[i]!]!; t !== null; t = t.next) {
      if ((t.attributes & ~attrMask) !== 0) continue; // an attribute outside the mask
      soonest = key;
      break;
    }
  }
  return soonest;
}

// Buckets. Heap operations keep bPos up to date, so any bucket can leave when it empties.

function bucketAdd(q: TimerQueue, key: number): number {
  let b = q.bFree;
  if (b >= 0) {
    q.bFree = q.bPos[b]!;
  } else {
    b = q.bUsed++;
    if (b === q.bKey.length) bucketsGrow(q, 2 * b);
    q.bHead.push(null);
    q.bTail.push(null);
  }
  q.bKey[b] = key;
  indexAdd(q, key, b);
  const i = q.size++;
  q.hId[i] = b;
  q.hKey[i] = key;
  siftUp(q, i);
  return b;
}

function bucketRemove(q: TimerQueue, b: number): void {
  indexRemove(q, q.bKey[b]!);
  const i = q.bPos[b]!;
  const last = --q.size;
  if (i !== last) {
    q.hId[i] = q.hId[last]!;
    q.hKey[i] = q.hKey[last]!;
    q.bPos[q.hId[i]!] = i;
    // The moved bucket may belong above or below position i.
    if (i > 0 && q.hKey[i]! < q.hKey[(i - 1) >> 2]!) siftUp(q, i);
    else siftDown(q, i);
  }
  q.bPos[b] = q.bFree;
  q.bFree = b;
}

function bucketsGrow(q: TimerQueue, n: number): void {
  q.bKey = grownF64(q.bKey, n);
  q.bPos = grownI32(q.bPos, n);
  q.hId = grownI32(q.hId, n);
  q.hKey = grownF64(q.hKey, n);
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

// The heap is 4-ary over a Float64Array of keys, so a node's four children share a cache line.

function siftUp(q: TimerQueue, i: number): void {
  const { hId, hKey, bPos } = q;
  const id = hId[i]!;
  const key = hKey[i]!;
  while (i > 0) {
    const p = (i - 1) >> 2;
    const pk = hKey[p]!;
    if (key > pk) break; // keys are distinct
    const pid = hId[p]!;
    hId[i] = pid;
    hKey[i] = pk;
    bPos[pid] = i;
    i = p;
  }
  hId[i] = id;
  hKey[i] = key;
  bPos[id] = i;
}

function siftDown(q: TimerQueue, i: number): void {
  const { hId, hKey, bPos } = q;
  const n = q.size;
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
    const cid = hId[c]!;
    hId[i] = cid;
    hKey[i] = ck;
    bPos[cid] = i;
    i = c;
  }
  hId[i] = id;
  hKey[i] = key;
  bPos[id] = i;
}

// The index. Deadlines are safe integers, often multiples of a power of ten: both 32-bit halves
// are mixed and the slot is taken from the top bits of a Fibonacci product, which spreads them.

function indexSlot(key: number, shift: number): number {
  const lo = key >>> 0; // key mod 2^32: exact for a non-negative safe integer
  const hi = (key / 0x1_0000_0000) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> shift;
}

/**
 * The slot holding `key`, or the empty slot where its probe run ends. Bounded: the index is at
 * most half full, so every run of occupied slots ends well within the table.
 */
function indexProbe(xKey: Float64Array, xId: Int32Array, shift: number, key: number): number {
  const mask = xId.length - 1;
  let s = indexSlot(key, shift);
  for (let n = 0; n <= mask; n++) {
    if (xId[s]! < 0 || xKey[s] === key) return s;
    s = (s + 1) & mask;
  }
  throw new AssertionError(`timer queue index: no free slot among ${mask + 1}`);
}

/** The bucket of deadline `key`, or -1. */
function indexFind(q: TimerQueue, key: number): number {
  return q.xId[indexProbe(q.xKey, q.xId, q.xShift, key)]!;
}

function indexAdd(q: TimerQueue, key: number, b: number): void {
  // Keep the index at most half full, so probes stay short. The heap does not hold `key` yet,
  // so a rebuild from it leaves `key` to be added below.
  if (2 * (q.size + 1) > q.xId.length) indexRebuild(q, q.xShift - 1);
  const s = indexProbe(q.xKey, q.xId, q.xShift, key);
  q.xKey[s] = key;
  q.xId[s] = b;
}

/** Remove `key` by shifting later entries of its probe run back (no tombstones). */
function indexRemove(q: TimerQueue, key: number): void {
  const { xKey, xId, xShift } = q;
  const mask = xId.length - 1;
  let hole = indexProbe(xKey, xId, xShift, key);
  // The message is built only on failure: formatting the deadline on every call costs more than
  // the removal itself.
  if (xId[hole]! < 0) assert(false, `timer queue index: deadline ${key} ns has no bucket`);
  // The loop ends at the empty slot that ends the run (the index is at most half full).
  for (let s = (hole + 1) & mask; xId[s]! >= 0; s = (s + 1) & mask) {
    // The entry at s may fill the hole unless its home slot lies cyclically in (hole, s].
    const home = indexSlot(xKey[s]!, xShift);
    if (((s - home) & mask) < ((s - hole) & mask)) continue;
    xKey[hole] = xKey[s]!;
    xId[hole] = xId[s]!;
    hole = s;
  }
  xId[hole] = -1;
}

function indexRebuild(q: TimerQueue, shift: number): void {
  q.xShift = shift;
  q.xKey = new Float64Array(1 << (32 - shift));
  q.xId = new Int32Array(1 << (32 - shift)).fill(-1);
  for (let i = 0; i < q.size; i++) {
    const s = indexProbe(q.xKey, q.xId, shift, q.hKey[i]!);
    q.xKey[s] = q.hKey[i]!;
    q.xId[s] = q.hId[i]!;
  }
}
