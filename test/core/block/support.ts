// Helpers for the block tests: in-memory qcow2 images, a seeded PRNG for data, a reference disk,
// and fault-injecting files that model a killed process (writes stop at a given count) and a
// power loss (writes since the last flush survive at random).
import {
  type BlockFile, type MemFileData, type MemBlockFileProvider, type Qcow2State, memBlockFileOpen,
  memBlockFileProviderCreate, qcow2Create, qcow2Open,
} from '../../../core/block/index.ts';
import { prngCreate, prngInt, prngNextU32, type PrngState } from '../../../core/util/index.ts';

export const SEED = Number(process.env.SEED ?? 1);

/** A provider holding one new qcow2 image `name`. */
export function memQcow2(size: number, opts: { clusterSize?: number; refcountBits?: number; name?: string } = {}): { p: MemBlockFileProvider; name: string } {
  const p = memBlockFileProviderCreate();
  const name = opts.name ?? 'disk.qcow2';
  const f = p.create(name);
  qcow2Create(f, { size, clusterSize: opts.clusterSize, refcountBits: opts.refcountBits });
  f.close();
  return { p, name };
}

export function openRw(p: MemBlockFileProvider, name: string): Qcow2State {
  return qcow2Open(p.open(name, false), { readOnly: false });
}

/** Fill `n` bytes from the PRNG (runs of one value now and then, so zero detection has work). */
export function randomBytes(rng: PrngState, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const v = prngNextU32(rng);
    b[i] = v & 0xff;
    if (i + 1 < n) b[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = v >>> 24;
  }
  if (prngInt(rng, 4) === 0) b.fill(prngInt(rng, 256));
  return b;
}

/** A random [offset, length) inside `size`, biased towards cluster-crossing ranges. */
export function randomRange(rng: PrngState, size: number, maxLen: number): [number, number] {
  const len = 1 + prngInt(rng, maxLen);
  const off = prngInt(rng, Math.max(1, size - len + 1));
  return [off, Math.min(len, size - off)];
}

export function rngFor(label: string, seed = SEED): PrngState {
  let h = seed >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return prngCreate(h);
}

/** Thrown by a KillFile once its write budget is spent: the "process" is gone. */
export class Killed extends Error {
  override name = 'Killed';
}

/**
 * A file that applies the first `budget` writes and then dies: the next write (and every later
 * call) throws Killed without touching the data, as a process killed between two pwrite calls.
 */
export function killFile(name: string, d: MemFileData, budget: number): BlockFile & { writes: () => number } {
  const inner = memBlockFileOpen(name, d);
  let writes = 0;
  let dead = false;
  const guard = (): void => {
    if (dead) throw new Killed('killed');
  };
  return {
    name,
    readOnly: false,
    writes: () => writes,
    size: () => (guard(), inner.size()),
    pread: (o, b) => (guard(), inner.pread(o, b)),
    pwrite(o, data) {
      guard();
      if (writes >= budget) {
        dead = true;
        throw new Killed(`killed before write ${writes + 1}`);
      }
      writes++;
      inner.pwrite(o, data);
    },
    flush: () => guard(),
    truncate: (n) => (guard(), inner.truncate(n)),
    close: () => inner.close(),
  };
}

/**
 * A file for power-loss tests: it works normally, and `crashImage(rng)` returns what a disk
 * would hold after power failed now: everything flushed, plus each write since the last flush
 * kept or lost at random (kept ones in their original order).
 */
export function powerFile(name: string, d: MemFileData): BlockFile & { crashImage: (rng: PrngState) => Uint8Array; flushes: () => number } {
  const inner = memBlockFileOpen(name, d);
  let durable = d.bytes.slice(0, d.length);
  let pending: Array<{ offset: number; data: Uint8Array }> = [];
  let flushes = 0;
  return {
    name,
    readOnly: false,
    flushes: () => flushes,
    size: () => inner.size(),
    pread: (o, b) => inner.pread(o, b),
    pwrite(o, data) {
      inner.pwrite(o, data);
      pending.push({ offset: o, data: data.slice() });
    },
    flush() {
      flushes++;
      durable = d.bytes.slice(0, d.length);
      pending = [];
    },
    truncate: (n) => inner.truncate(n),
    close: () => inner.close(),
    crashImage(rng) {
      let img = durable.slice();
      for (const w of pending) {
        if (prngInt(rng, 2) === 0) continue;
        if (w.offset + w.data.length > img.length) {
          const grown = new Uint8Array(w.offset + w.data.length);
          grown.set(img);
          img = grown;
        }
        img.set(w.data, w.offset);
      }
      return img;
    },
  };
}

/** A MemFileData holding a copy of `bytes`. */
export function memData(bytes: Uint8Array): MemFileData {
  return { bytes: bytes.slice(), length: bytes.length };
}

/** First index where a and b differ, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
