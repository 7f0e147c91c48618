// qcow2 data path: create, open, read and write at seeded random offsets and sizes against a
// flat reference buffer, across cluster sizes and refcount widths, with the consistency check
// (refcounts, COPIED flags) clean after every operation and after reopening. Zero writes and
// discards, L1 growth, refcount block creation and refcount table growth are covered too.
import { describe, expect, it } from 'vitest';
import {
  qcow2Check, qcow2Close, qcow2GetRefcount, qcow2Pread, qcow2Pwrite, qcow2ZeroClusters, qcow2Open,
  memFileBytes, qcow2VmStateOffset,
} from '../../../core/block/index.ts';
import { prngInt } from '../../../core/util/index.ts';
import { SEED, firstDiff, memQcow2, openRw, randomBytes, randomRange, rngFor } from './support.ts';

function expectClean(s: Parameters<typeof qcow2Check>[0], what: string): void {
  const r = qcow2Check(s);
  expect(r.messages, what).toEqual([]);
  expect([r.corruptions, r.leaks, r.checkErrors], what).toEqual([0, 0, 0]);
}

describe('qcow2 create', () => {
  it('writes the layout qemu-img create writes (64 KiB clusters, 64 MiB)', () => {
    const { p, name } = memQcow2(64 << 20);
    const b = memFileBytes(p.files.get(name)!);
    expect(b.length).toBe(196616);
    expect(Array.from(b.subarray(0, 8))).toEqual([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    const s = openRw(p, name);
    expect([s.l1Size, s.l1TableOffset, s.refcountTableOffset, s.headerLength]).toEqual([1, 0x30000, 0x10000, 112]);
    expect([0, 1, 2, 3, 4].map((c) => qcow2GetRefcount(s, c))).toEqual([1, 1, 1, 1, 0]);
    expectClean(s, 'fresh image');
  });

  it('rounds the size up to 512 and refuses bad cluster sizes with QEMU\'s text', () => {
    const { p, name } = memQcow2(1000);
    expect(openRw(p, name).size).toBe(1024);
    expect(() => memQcow2(1 << 20, { clusterSize: 1000 })).toThrow('Cluster size must be a power of two between 512 and 2048k');
    expect(() => memQcow2(1 << 20, { clusterSize: 256 })).toThrow('Cluster size must be a power of two between 512 and 2048k');
  });
});

const CONFIGS: Array<{ clusterSize: number; refcountBits: number; size: number }> = [
  { clusterSize: 65536, refcountBits: 16, size: 8 << 20 },
  { clusterSize: 4096, refcountBits: 16, size: 4 << 20 },
  { clusterSize: 512, refcountBits: 16, size: 1 << 20 },
  { clusterSize: 512, refcountBits: 1, size: 512 << 10 },
  { clusterSize: 1024, refcountBits: 4, size: 1 << 20 },
  { clusterSize: 2048, refcountBits: 64, size: 1 << 20 },
];

describe('qcow2 random I/O against a reference buffer', () => {
  for (const cfg of CONFIGS) {
    it(`matches the reference (seed ${SEED}, ${cfg.clusterSize}-byte clusters, ${cfg.refcountBits}-bit refcounts)`, () => {
      const rng = rngFor(`io-${cfg.clusterSize}-${cfg.refcountBits}`);
      const { p, name } = memQcow2(cfg.size, cfg);
      let s = openRw(p, name);
      const ref = new Uint8Array(cfg.size);
      for (let op = 0; op < 120; op++) {
        const [off, len] = randomRange(rng, cfg.size, 4 * cfg.clusterSize + 100);
        const kind = prngInt(rng, 10);
        if (kind < 6) {
          const data = randomBytes(rng, len);
          qcow2Pwrite(s, off, data);
          ref.set(data, off);
        } else if (kind < 8) {
          qcow2ZeroClusters(s, off, len, prngInt(rng, 2) === 0 ? 'zero' : 'zero-unmap');
          ref.fill(0, off, off + len);
        } else {
          qcow2ZeroClusters(s, off, len, 'discard'); // whole clusters only
          const cs = cfg.clusterSize;
          const first = Math.ceil(off / cs) * cs;
          const last = Math.floor((off + len) / cs) * cs;
          if (last > first) ref.fill(0, first, last);
        }
        if (op % 10 === 9) {
          const back = new Uint8Array(cfg.size);
          qcow2Pread(s, 0, back);
          expect(firstDiff(back, ref), `seed ${SEED} op ${op}`).toBe(-1);
          expectClean(s, `seed ${SEED} op ${op}`);
        }
        if (op === 60) {
          qcow2Close(s);
          s = openRw(p, name);
        }
      }
      const [off, len] = randomRange(rng, cfg.size, 3 * cfg.clusterSize);
      const part = new Uint8Array(len);
      qcow2Pread(s, off, part);
      expect(firstDiff(part, ref.subarray(off, off + len))).toBe(-1);
      qcow2Close(s);
      const ro = qcow2Open(p.open(name, true), { readOnly: true });
      const back = new Uint8Array(cfg.size);
      qcow2Pread(ro, 0, back);
      expect(firstDiff(back, ref), `seed ${SEED} after reopen`).toBe(-1);
      expectClean(ro, 'read-only reopen');
    });
  }
});

describe('qcow2 metadata growth', () => {
  it('grows the L1 table for the vmstate area and keeps the disk intact', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    const disk = randomBytes(rngFor('l1'), 1 << 20);
    qcow2Pwrite(s, 0, disk);
    const l1Before = s.l1Size;
    const far = qcow2VmStateOffset(s) + 5 * 2 * 1024 * 1024 + 123;
    qcow2Pwrite(s, far, new Uint8Array(10000).fill(7));
    expect(s.l1Size).toBeGreaterThan(l1Before);
    const back = new Uint8Array(1 << 20);
    qcow2Pread(s, 0, back);
    expect(firstDiff(back, disk)).toBe(-1);
    const v = new Uint8Array(10000);
    qcow2Pread(s, far, v);
    expect(v.every((x) => x === 7)).toBe(true);
    expectClean(s, 'after L1 growth');
  });

  it('creates refcount blocks and grows the refcount table as the file grows', () => {
    // 512-byte clusters: one refcount block covers 128 KiB, one table cluster 8 MiB.
    const { p, name } = memQcow2(12 << 20, { clusterSize: 512 });
    const s = openRw(p, name);
    const tableBefore = s.refcountTableClusters;
    const rng = rngFor('grow');
    const ref = new Uint8Array(12 << 20);
    for (let off = 0; off < (12 << 20); off += 1 << 20) {
      const d = randomBytes(rng, 1 << 20);
      qcow2Pwrite(s, off, d);
      ref.set(d, off);
    }
    expect(s.refcountTableClusters).toBeGreaterThan(tableBefore);
    expectClean(s, 'after table growth');
    qcow2Close(s);
    const again = openRw(p, name);
    const back = new Uint8Array(12 << 20);
    qcow2Pread(again, 0, back);
    expect(firstDiff(back, ref)).toBe(-1);
  });

  it('a zero write keeps host clusters allocated unless it may unmap, as QEMU does', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    qcow2Pwrite(s, 0, new Uint8Array(16384).fill(5));
    expect(qcow2Check(s).allocatedClusters).toBe(4);
    qcow2ZeroClusters(s, 0, 8192, 'zero');
    expect(qcow2Check(s).allocatedClusters).toBe(4); // zero-alloc clusters still count
    qcow2ZeroClusters(s, 8192, 8192, 'zero-unmap');
    expect(qcow2Check(s).allocatedClusters).toBe(2);
    const b = new Uint8Array(16384);
    qcow2Pread(s, 0, b);
    expect(b.every((x) => x === 0)).toBe(true);
    const l2 = s.l2Cache.get([...s.l2Cache.keys()][0]!)!;
    const entryBefore = Array.from(l2.subarray(0, 8));
    qcow2Pwrite(s, 100, new Uint8Array(10).fill(1)); // into a zero-alloc cluster: in place
    expect(Array.from(l2.subarray(0, 7))).toEqual(entryBefore.slice(0, 7));
    expect([entryBefore[7]! & 1, l2[7]! & 1]).toEqual([1, 0]);
    qcow2Pread(s, 0, b);
    expect([b[99], b[100], b[109], b[110]]).toEqual([0, 1, 1, 0]);
    expectClean(s, 'after zero writes');
  });

  it('reuses freed clusters before growing the file', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    qcow2Pwrite(s, 0, new Uint8Array(256 << 10).fill(1));
    const size1 = s.file.size();
    qcow2ZeroClusters(s, 0, 256 << 10, 'discard');
    qcow2Pwrite(s, 512 << 10, new Uint8Array(256 << 10).fill(2));
    expect(s.file.size()).toBe(size1);
    expectClean(s, 'after reuse');
  });
});
