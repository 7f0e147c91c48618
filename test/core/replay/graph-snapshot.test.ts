// In-place graph snapshots (core/replay/graph-snapshot.ts): everything reachable from the roots
// is put back as it was, in the same objects, so closures that captured them see the restored
// state; objects created later fall away; byte ranges are restored per view, unchanged copies are
// shared with the previous snapshot, excluded objects are left alone. Method: mutate every kind
// of container after a snapshot, restore, compare with a deep copy taken at snapshot time.
import { describe, expect, it } from 'vitest';
import { graphSnapshotRestore, graphSnapshotTake } from '../../../core/replay/index.ts';

interface Node {
  n: number;
  s: string;
  next: Node | null;
  list: Array<number | Node>;
  map: Map<string, Node | number>;
  set: Set<number>;
  bytes: Uint8Array;
  words: Int32Array;
  fn: () => number;
  extra?: string;
}

function make(): Node {
  const buf = new ArrayBuffer(16);
  const leaf: Node = { n: 1, s: 'leaf', next: null, list: [], map: new Map(), set: new Set(), bytes: new Uint8Array(4), words: new Int32Array(2), fn: () => 0 };
  const root: Node = {
    n: 5, s: 'root', next: leaf, list: [1, 2, leaf], map: new Map<string, Node | number>([['a', 1], ['leaf', leaf]]),
    set: new Set([3, 4]), bytes: new Uint8Array(buf, 4, 8), words: new Int32Array(buf, 0, 4), fn: () => root.n,
  };
  return root;
}

function shape(r: Node): unknown {
  return {
    n: r.n, s: r.s, keys: Object.keys(r), next: r.next?.n, leafS: r.next?.s, list: r.list.map((x) => (typeof x === 'number' ? x : x.s)),
    map: [...r.map.entries()].map(([k, v]) => [k, typeof v === 'number' ? v : v.s]), set: [...r.set], bytes: [...r.bytes],
    words: [...r.words], leafBytes: [...(r.next?.bytes ?? [])], fn: r.fn(),
  };
}

describe('graph snapshots', () => {
  it('restores properties, arrays, maps, sets and bytes in place', () => {
    const root = make();
    root.bytes.set([1, 2, 3]);
    const before = shape(root);
    const leaf = root.next!;
    const snap = graphSnapshotTake([root], { exclude: new Set() });
    root.n = 99;
    root.s = 'changed';
    root.extra = 'added later';
    root.next = null;
    leaf.s = 'leaf changed';
    leaf.bytes[0] = 7;
    root.list.push(42);
    root.list[0] = 100;
    root.map.delete('a');
    root.map.set('z', 3);
    root.set.add(5);
    root.words[0] = -1; // shares its buffer with root.bytes
    root.bytes[7] = 9;
    graphSnapshotRestore(snap);
    expect(shape(root)).toEqual(before);
    expect(root.next).toBe(leaf); // the same object, not a copy
    expect('extra' in root).toBe(false);
    expect(root.fn()).toBe(5); // the closure sees the restored state
  });

  it('keeps the key order of an object whose keys were removed and re-added', () => {
    const o: Record<string, number> = { a: 1, b: 2, c: 3 };
    const snap = graphSnapshotTake([o], { exclude: new Set() });
    delete o['a'];
    o['a'] = 9;
    o['d'] = 4;
    graphSnapshotRestore(snap);
    expect(Object.entries(o)).toEqual([['a', 1], ['b', 2], ['c', 3]]);
  });

  it('restores only a view range of a shared buffer (a Buffer pool slice)', () => {
    const pool = new Uint8Array(32).fill(1);
    const view = pool.subarray(8, 12);
    const snap = graphSnapshotTake([{ view }], { exclude: new Set() });
    pool.fill(2);
    graphSnapshotRestore(snap);
    expect([...pool.subarray(8, 12)]).toEqual([1, 1, 1, 1]);
    expect(pool[0]).toBe(2);
    expect(pool[31]).toBe(2);
  });

  it('shares unchanged byte copies with the previous snapshot and counts only new bytes', () => {
    const big = new Uint8Array(65536);
    const small = new Uint8Array(16);
    const root = { big, small };
    const a = graphSnapshotTake([root], { exclude: new Set() });
    small[0] = 1;
    const b = graphSnapshotTake([root], { exclude: new Set(), previous: a });
    expect(a.costBytes).toBeGreaterThanOrEqual(65536 + 16);
    expect(b.costBytes).toBeLessThan(1024);
    expect(b.bytes.find((x) => x.length === 65536)!.copy).toBe(a.bytes.find((x) => x.length === 65536)!.copy);
    small[0] = 2;
    big[5] = 5;
    graphSnapshotRestore(b);
    expect(small[0]).toBe(1);
    expect(big[5]).toBe(0);
  });

  it('leaves excluded objects alone and does not walk them', () => {
    const debuggerState = { steps: 1, big: new Uint8Array(1 << 20) };
    const root = { x: 1, dbg: debuggerState };
    const snap = graphSnapshotTake([root], { exclude: new Set([debuggerState]) });
    expect(snap.costBytes).toBeLessThan(1024);
    root.x = 2;
    debuggerState.steps = 5;
    graphSnapshotRestore(snap);
    expect(root.x).toBe(1);
    expect(debuggerState.steps).toBe(5);
  });

  it('walks frozen objects without writing to them', () => {
    const inner = { v: 1 };
    const frozen = Object.freeze({ inner });
    const snap = graphSnapshotTake([frozen], { exclude: new Set() });
    inner.v = 2;
    graphSnapshotRestore(snap);
    expect(inner.v).toBe(1);
  });
});
