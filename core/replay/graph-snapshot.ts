// In-memory snapshots of a whole machine, restored in place. A snapshot walks every object
// reachable from the roots (the kernel Machine, the monitor set) and keeps a shallow copy of each
// one's own enumerable properties, and a copy of the bytes of every typed array; restoring puts
// every property and byte back into the same objects. Because objects keep their identity,
// closures that captured them (chardev handlers, fd writers, timer callbacks) see the restored
// state too; objects created after the snapshot simply become unreachable. This covers what the
// VM's migration stream does not: chardevs, monitors, the fd table, the trace, the replay cursor.
// Limits: state held only in closure variables is not seen (the kernel keeps its state in objects,
// STYLE.md §5); accessor properties and WeakMaps are skipped. Snapshots are taken between loop
// steps only (no step function mid-flight), except that a restore may also target a frozen state.

import { assert } from '../util/index.ts';

type TypedView = ArrayBufferView;

/** The saved shape of one object. */
type Saved =
  | { t: 'obj'; o: Record<string, unknown>; keys: string[]; vals: unknown[] }
  | { t: 'arr'; o: unknown[]; vals: unknown[] }
  | { t: 'map'; o: Map<unknown, unknown>; entries: unknown[] }
  | { t: 'set'; o: Set<unknown>; vals: unknown[] };

/** The saved bytes of one typed-array range. */
interface SavedBytes {
  buffer: ArrayBufferLike;
  offset: number;
  length: number;
  copy: Uint8Array;
}

export interface GraphSnapshot {
  saved: Saved[];
  bytes: SavedBytes[];
  /** Estimated memory held by this snapshot alone (copies shared with the previous excluded). */
  costBytes: number;
  objects: number;
}

export interface GraphSnapshotOptions {
  /** Objects neither saved nor walked (the replay debugger, the log bytes, big append-only arrays). */
  exclude: ReadonlySet<object>;
  /** An earlier snapshot: byte ranges that did not change share its copies. */
  previous?: GraphSnapshot | null;
}

/** Walks and copies at most this many objects: a bigger graph is a leak, not a machine. */
const GRAPH_OBJECTS_MAX = 5_000_000;
const OBJECT_COST = 64;
const SLOT_COST = 8;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const n = a.length;
  if ((a.byteOffset & 3) === 0 && (b.byteOffset & 3) === 0) {
    const words = n >>> 2;
    const a32 = new Int32Array(a.buffer, a.byteOffset, words);
    const b32 = new Int32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) if (a32[i] !== b32[i]) return false;
    for (let i = words * 4; i < n; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of `prev`'s byte ranges by buffer, for sharing unchanged copies. */
function indexBytes(prev: GraphSnapshot | null | undefined): Map<ArrayBufferLike, SavedBytes[]> {
  const idx = new Map<ArrayBufferLike, SavedBytes[]>();
  for (const b of prev?.bytes ?? []) {
    const list = idx.get(b.buffer);
    if (list) list.push(b);
    else idx.set(b.buffer, [b]);
  }
  return idx;
}

function isWalkable(v: unknown): v is object {
  return v !== null && typeof v === 'object';
}

/** Take a snapshot of everything reachable from `roots`. */
export function graphSnapshotTake(roots: readonly object[], opts: GraphSnapshotOptions): GraphSnapshot {
  const seen = new Set<object>();
  const seenRanges = new Map<ArrayBufferLike, SavedBytes[]>();
  const prevIdx = indexBytes(opts.previous);
  const snap: GraphSnapshot = { saved: [], bytes: [], costBytes: 0, objects: 0 };
  const stack: object[] = [];
  const push = (v: unknown): void => {
    if (!isWalkable(v) || seen.has(v) || opts.exclude.has(v)) return;
    seen.add(v);
    stack.push(v);
  };
  for (const r of roots) push(r);
  while (stack.length > 0) {
    assert(snap.objects < GRAPH_OBJECTS_MAX, `graph snapshot: more than ${GRAPH_OBJECTS_MAX} objects reachable`);
    const o = stack.pop()!;
    snap.objects++;
    if (ArrayBuffer.isView(o)) {
      saveView(snap, o, seenRanges, prevIdx);
    } else if (Array.isArray(o)) {
      const vals = o.slice();
      snap.saved.push({ t: 'arr', o, vals });
      snap.costBytes += OBJECT_COST + vals.length * SLOT_COST;
      for (const v of vals) push(v);
    } else if (o instanceof Map) {
      const entries: unknown[] = [];
      for (const [k, v] of o) entries.push(k, v);
      snap.saved.push({ t: 'map', o, entries });
      snap.costBytes += OBJECT_COST + entries.length * SLOT_COST;
      for (const v of entries) push(v);
    } else if (o instanceof Set) {
      const vals = [...o];
      snap.saved.push({ t: 'set', o, vals });
      snap.costBytes += OBJECT_COST + vals.length * SLOT_COST;
      for (const v of vals) push(v);
    } else if (!(o instanceof WeakMap) && !(o instanceof WeakSet)) {
      saveObject(snap, o as Record<string, unknown>, push);
    }
  }
  return snap;
}

function saveObject(snap: GraphSnapshot, o: Record<string, unknown>, push: (v: unknown) => void): void {
  const keys = Object.keys(o);
  const vals = keys.map((k) => o[k]);
  // A frozen object cannot change: walk its children but save nothing for it.
  if (!Object.isFrozen(o)) {
    snap.saved.push({ t: 'obj', o, keys, vals });
    snap.costBytes += OBJECT_COST + keys.length * SLOT_COST * 2;
  }
  for (const v of vals) push(v);
}

function saveView(
  snap: GraphSnapshot, v: TypedView, seenRanges: Map<ArrayBufferLike, SavedBytes[]>,
  prevIdx: Map<ArrayBufferLike, SavedBytes[]>,
): void {
  const { buffer, byteOffset: offset, byteLength: length } = v;
  const mine = seenRanges.get(buffer);
  if (mine?.some((r) => r.offset === offset && r.length === length)) return; // another view of the same bytes
  const live = new Uint8Array(buffer, offset, length);
  const prev = prevIdx.get(buffer)?.find((r) => r.offset === offset && r.length === length);
  let copy: Uint8Array;
  if (prev && sameBytes(prev.copy, live)) {
    copy = prev.copy;
  } else {
    copy = live.slice();
    snap.costBytes += length;
  }
  const rec: SavedBytes = { buffer, offset, length, copy };
  if (mine) mine.push(rec);
  else seenRanges.set(buffer, [rec]);
  snap.bytes.push(rec);
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Put every saved property and byte back into its object. */
export function graphSnapshotRestore(snap: GraphSnapshot): void {
  for (const s of snap.saved) {
    switch (s.t) {
      case 'obj': restoreObject(s.o, s.keys, s.vals); break;
      case 'arr': {
        const a = s.o;
        if (a.length !== s.vals.length) a.length = s.vals.length;
        for (let i = 0; i < s.vals.length; i++) if (a[i] !== s.vals[i]) a[i] = s.vals[i];
        break;
      }
      case 'map': {
        const now: unknown[] = [];
        for (const [k, v] of s.o) now.push(k, v);
        if (sameList(now, s.entries)) break;
        s.o.clear();
        for (let i = 0; i < s.entries.length; i += 2) s.o.set(s.entries[i], s.entries[i + 1]);
        break;
      }
      case 'set':
        if (sameList([...s.o], s.vals)) break;
        s.o.clear();
        for (const v of s.vals) s.o.add(v);
        break;
    }
  }
  for (const b of snap.bytes) new Uint8Array(b.buffer, b.offset, b.length).set(b.copy);
}

function restoreObject(o: Record<string, unknown>, keys: string[], vals: unknown[]): void {
  const now = Object.keys(o);
  if (sameList(now, keys)) {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (o[k] !== vals[i]) o[k] = vals[i];
    }
    return;
  }
  // Keys were added or removed: rebuild in the saved order, so iteration order is as it was.
  for (const k of now) delete o[k];
  for (let i = 0; i < keys.length; i++) o[keys[i]!] = vals[i];
}
