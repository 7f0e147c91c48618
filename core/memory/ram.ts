// Guest RAM: one block at RAM_BASE, stored in 64 KiB chunks that are allocated on the first
// write to any of their 4 KiB pages (reads of untouched memory see a shared zero chunk), plus the
// per-page "watch" bytes that send a store to the slow path when it must do more than write.
// Mirrors QEMU's RAMBlock and dirty-memory bitmap (softmmu/physmem.c, include/exec/ram_addr.h).
// Invariant: a store may write a chunk view directly only when its page's watch byte is 0.

import { assert } from '../util/index.ts';

/** Physical address of RAM on the virt board (`memmap[VIRT_DRAM].base`). */
export const RAM_BASE = 0x8000_0000;
/** QEMU's TARGET_PAGE_BITS for riscv: dirty logging and page enumeration use 4 KiB pages. */
export const TARGET_PAGE_BITS = 12;
export const TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS;
/** Allocation unit: 64 KiB, so the chunk tables of a 256 MiB machine have 4096 entries. */
export const RAM_CHUNK_BITS = 16;
export const RAM_CHUNK_SIZE = 1 << RAM_CHUNK_BITS;
export const PAGES_PER_CHUNK = RAM_CHUNK_SIZE / TARGET_PAGE_SIZE;
/** Largest RAM that fits between RAM_BASE and the top of the 32-bit physical address space. */
export const RAM_SIZE_MAX = 0x8000_0000;

/** Int32 words of decode cache per 4-byte instruction slot (owned by core/cpu, see decode.ts). */
export const DECODE_STRIDE = 2;
/** Length of one chunk's decode cache array. */
export const DECODE_CHUNK_LENGTH = (RAM_CHUNK_SIZE / 4) * DECODE_STRIDE;

// Watch bits, one byte per page. A store to a page with any bit set goes through ramWatchHit.
/** The page was never written: its chunk may still be the shared zero chunk. */
export const WATCH_UNWRITTEN = 1;
/** The decode cache holds instructions decoded from this page. */
export const WATCH_CODE = 2;
/** Some hart holds an LR reservation in this page. */
export const WATCH_RESERVED = 4;
/** Dirty logging is on and this page is not yet marked dirty in the bitmap. */
export const WATCH_DIRTY_LOG = 8;

/** Anything that holds an LR/SC reservation (a vCPU): `resvAddr` is -1 when it holds none. */
export interface ReservationHolder {
  resvAddr: number;
}

/**
 * The RAM block. Not itself snapshot state: its contents are saved page by page
 * (`ramForEachWrittenPage`) and the decode cache is derived.
 */
export interface Ram {
  ramBase: number;
  ramSize: number;
  pageCount: number;
  /** Three views of each chunk; an unallocated chunk is the read-only zero chunk. */
  ram8: Uint8Array[];
  ram16: Uint16Array[];
  ram32: Int32Array[];
  zero8: Uint8Array;
  watch: Uint8Array;
  writtenPages: number;
  dirtyLogging: boolean;
  /** One bit per page, LSB first; non-null while dirty logging is on. */
  dirtyBitmap: Uint8Array | null;
  /** Per-chunk decode caches of core/cpu (derived, never saved); null until code runs there. */
  decode: Array<Int32Array | null>;
  /**
   * Per-chunk generation of the decoded code: bumped whenever a decoded instruction in the chunk
   * is overwritten or flushed, so caches derived from decoded code (core/cpu's compiled blocks)
   * know they are stale.
   */
  decodeGen: Uint32Array;
  /** Per-chunk compiled-block caches of core/cpu (derived, opaque here); null until built. */
  blocks: Array<unknown>;
  /** Harts whose reservations a store may break (registered by core/cpu). */
  resvHolders: ReservationHolder[];
}

/**
 * Create a RAM block of `sizeBytes` at `base`. Nothing is allocated per page: the block costs its
 * chunk tables and one byte per 4 KiB page until the guest writes.
 */
export function ramCreate(base: number, sizeBytes: number): Ram {
  assert(Number.isInteger(sizeBytes) && sizeBytes > 0, `RAM size ${sizeBytes} is not positive`);
  assert(sizeBytes % TARGET_PAGE_SIZE === 0, `RAM size ${sizeBytes} is not a multiple of 4 KiB`);
  assert(sizeBytes <= RAM_SIZE_MAX, `RAM size ${sizeBytes} exceeds ${RAM_SIZE_MAX} bytes`);
  assert(base % RAM_CHUNK_SIZE === 0 && base + sizeBytes <= 0x1_0000_0000, `bad RAM base ${base}`);
  const chunkCount = Math.ceil(sizeBytes / RAM_CHUNK_SIZE);
  const zero = new ArrayBuffer(RAM_CHUNK_SIZE);
  const zero8 = new Uint8Array(zero);
  const pageCount = sizeBytes / TARGET_PAGE_SIZE;
  return {
    ramBase: base,
    ramSize: sizeBytes,
    pageCount,
    ram8: new Array<Uint8Array>(chunkCount).fill(zero8),
    ram16: new Array<Uint16Array>(chunkCount).fill(new Uint16Array(zero)),
    ram32: new Array<Int32Array>(chunkCount).fill(new Int32Array(zero)),
    zero8,
    watch: new Uint8Array(pageCount).fill(WATCH_UNWRITTEN),
    writtenPages: 0,
    dirtyLogging: false,
    dirtyBitmap: null,
    decode: new Array<Int32Array | null>(chunkCount).fill(null),
    decodeGen: new Uint32Array(chunkCount),
    blocks: new Array<unknown>(chunkCount).fill(null),
    resvHolders: [],
  };
}

/** Give page `page` backing memory (allocating its chunk if needed) and count it as written. */
function ramTouchPage(ram: Ram, page: number): void {
  const chunk = page >>> (RAM_CHUNK_BITS - TARGET_PAGE_BITS);
  if (ram.ram8[chunk] === ram.zero8) {
    const buf = new ArrayBuffer(RAM_CHUNK_SIZE);
    ram.ram8[chunk] = new Uint8Array(buf);
    ram.ram16[chunk] = new Uint16Array(buf);
    ram.ram32[chunk] = new Int32Array(buf);
  }
  ram.watch[page] = (ram.watch[page] ?? 0) & ~WATCH_UNWRITTEN;
  ram.writtenPages++;
}

/**
 * Do what a store of `size` bytes at RAM offset `off` owes the watchers before it writes:
 * allocate, invalidate decoded instructions it overwrites, break reservations, log dirtiness.
 * Called by every RAM store whose page has a watch bit set; the caller then writes the bytes.
 */
export function ramWatchHit(ram: Ram, off: number, size: number): void {
  const first = off >>> TARGET_PAGE_BITS;
  const last = (off + size - 1) >>> TARGET_PAGE_BITS;
  for (let page = first; page <= last && page < ram.pageCount; page++) {
    const w = ram.watch[page] ?? 0;
    if (w & WATCH_UNWRITTEN) ramTouchPage(ram, page);
    if (w & WATCH_CODE) ramInvalidateDecode(ram, off, size);
    if (w & WATCH_RESERVED) ramBreakReservations(ram, off, size, page);
    if (w & WATCH_DIRTY_LOG) ramMarkDirty(ram, page);
  }
}

/** Forget decoded instructions in the 4-byte slots that [off, off+size) overlaps. */
function ramInvalidateDecode(ram: Ram, off: number, size: number): void {
  for (let slot = off >>> 2; slot <= (off + size - 1) >>> 2; slot++) {
    const byteOff = slot << 2;
    const c = byteOff >>> RAM_CHUNK_BITS;
    const dec = ram.decode[c];
    const at = ((byteOff & (RAM_CHUNK_SIZE - 1)) >>> 2) * DECODE_STRIDE;
    if (dec && dec[at] !== 0) {
      dec[at] = 0;
      ram.decodeGen[c] = (ram.decodeGen[c]! + 1) >>> 0;
    }
  }
}

/** Break every reservation overlapping the store; unwatch the page if none is left in it. */
function ramBreakReservations(ram: Ram, off: number, size: number, page: number): void {
  const lo = ram.ramBase + off;
  let left = false;
  for (const h of ram.resvHolders) {
    if (h.resvAddr === -1) continue;
    if (h.resvAddr < lo + size && lo < h.resvAddr + 4) h.resvAddr = -1;
    else if (((h.resvAddr - ram.ramBase) >>> TARGET_PAGE_BITS) === page) left = true;
  }
  if (!left) ram.watch[page] = (ram.watch[page] ?? 0) & ~WATCH_RESERVED;
}

function ramMarkDirty(ram: Ram, page: number): void {
  const bm = ram.dirtyBitmap;
  assert(bm !== null, 'WATCH_DIRTY_LOG set while dirty logging is off');
  bm[page >>> 3] = (bm[page >>> 3] ?? 0) | (1 << (page & 7));
  ram.watch[page] = (ram.watch[page] ?? 0) & ~WATCH_DIRTY_LOG;
}

/** Note that a hart reserved `addr` (inside RAM): stores to its page now check reservations. */
export function ramWatchReservation(ram: Ram, addr: number): void {
  const page = (addr - ram.ramBase) >>> TARGET_PAGE_BITS;
  if (page < ram.pageCount) ram.watch[page] = (ram.watch[page] ?? 0) | WATCH_RESERVED;
}

/** Register a reservation holder (a vCPU); registering the same one twice is a no-op. */
export function ramAddReservationHolder(ram: Ram, holder: ReservationHolder): void {
  if (!ram.resvHolders.includes(holder)) ram.resvHolders.push(holder);
}

/**
 * Forget every decoded instruction (FENCE.I): they are decoded again on next use. The cache
 * arrays are cleared in place, not dropped, so a guest that runs FENCE.I often does not churn.
 */
export function ramFlushDecode(ram: Ram): void {
  for (let c = 0; c < ram.decode.length; c++) {
    const dec = ram.decode[c];
    if (dec === null || dec === undefined) continue;
    dec.fill(0);
    ram.decodeGen[c] = (ram.decodeGen[c]! + 1) >>> 0;
    const p0 = c * PAGES_PER_CHUNK;
    for (let p = p0; p < p0 + PAGES_PER_CHUNK && p < ram.pageCount; p++) {
      ram.watch[p] = (ram.watch[p] ?? 0) & ~WATCH_CODE;
    }
  }
}

/**
 * Start dirty logging with a clean bitmap: from now on the first store to each page sets its bit.
 * @qemu softmmu/memory.c memory_global_dirty_log_start
 */
export function ramDirtyLogStart(ram: Ram): void {
  ram.dirtyLogging = true;
  ram.dirtyBitmap = new Uint8Array(Math.ceil(ram.pageCount / 8));
  for (let p = 0; p < ram.pageCount; p++) ram.watch[p] = (ram.watch[p] ?? 0) | WATCH_DIRTY_LOG;
}

/** Stop dirty logging and drop the bitmap. @qemu softmmu/memory.c memory_global_dirty_log_stop */
export function ramDirtyLogStop(ram: Ram): void {
  ram.dirtyLogging = false;
  ram.dirtyBitmap = null;
  for (let p = 0; p < ram.pageCount; p++) ram.watch[p] = (ram.watch[p] ?? 0) & ~WATCH_DIRTY_LOG;
}

/**
 * Return whether page `page` was written since logging started or since its bit was last
 * cleared, and clear it (re-arming the watch so the next store sets it again).
 * @qemu softmmu/physmem.c cpu_physical_memory_test_and_clear_dirty
 */
export function ramTestAndClearDirty(ram: Ram, page: number): boolean {
  const bm = ram.dirtyBitmap;
  assert(bm !== null, 'ramTestAndClearDirty: dirty logging is off');
  assert(page >= 0 && page < ram.pageCount, `page ${page} outside RAM`);
  const bit = 1 << (page & 7);
  const was = ((bm[page >>> 3] ?? 0) & bit) !== 0;
  if (was) {
    bm[page >>> 3] = (bm[page >>> 3] ?? 0) & ~bit;
    ram.watch[page] = (ram.watch[page] ?? 0) | WATCH_DIRTY_LOG;
  }
  return was;
}

/** Number of pages whose dirty bit is set. */
export function ramDirtyPageCount(ram: Ram): number {
  const bm = ram.dirtyBitmap;
  if (bm === null) return 0;
  let n = 0;
  for (const byte of bm) {
    for (let b = byte; b !== 0; b &= b - 1) n++;
  }
  return n;
}

/**
 * Call `fn` for every page the guest (or a loader) has written, in address order, with a view of
 * its 4096 bytes (not a copy: do not keep it past the call). Untouched pages read as zero and are
 * skipped; written pages may still be all zero.
 */
export function ramForEachWrittenPage(
  ram: Ram, fn: (page: number, bytes: Uint8Array) => void,
): void {
  for (let p = 0; p < ram.pageCount; p++) {
    if ((ram.watch[p] ?? 0) & WATCH_UNWRITTEN) continue;
    const chunk = ram.ram8[p >>> (RAM_CHUNK_BITS - TARGET_PAGE_BITS)];
    assert(chunk !== undefined && chunk !== ram.zero8, `written page ${p} has no backing chunk`);
    const o = (p << TARGET_PAGE_BITS) & (RAM_CHUNK_SIZE - 1);
    fn(p, chunk.subarray(o, o + TARGET_PAGE_SIZE));
  }
}

/** Write a whole page (loadvm, incoming migration), with the same effects as guest stores. */
export function ramLoadPage(ram: Ram, page: number, bytes: Uint8Array): void {
  assert(page >= 0 && page < ram.pageCount, `page ${page} outside RAM`);
  assert(bytes.length === TARGET_PAGE_SIZE, `page data is ${bytes.length} bytes, not 4096`);
  const off = page << TARGET_PAGE_BITS;
  ramWriteBytes(ram, off, bytes);
}

/**
 * Apply a load of whole pages of chunk `chunk` at once: `pageMask` (bit i: page i of the chunk)
 * names the pages `bytes` brings; the other pages keep what they hold. When the chunk is not
 * backed yet (every page of it reads zero) or every page is brought, `bytes` itself becomes the
 * chunk's backing (no copy: the caller gives up these RAM_CHUNK_SIZE bytes, which must be zero
 * outside the masked pages; they may be a view into a larger buffer, 8-byte aligned); otherwise
 * the masked pages are copied. Either way each page
 * owes the watchers what a store to it would (allocation, decoded code, reservations, dirty
 * log), exactly as ramLoadPage of each masked page would.
 */
export function ramLoadChunk(ram: Ram, chunk: number, bytes: Uint8Array, pageMask: number): void {
  assert(chunk >= 0 && chunk < ram.ram8.length, `chunk ${chunk} outside RAM`);
  assert(bytes.length === RAM_CHUNK_SIZE, `chunk data is ${bytes.length} bytes`);
  const p0 = chunk * PAGES_PER_CHUNK;
  const pages = Math.min(PAGES_PER_CHUNK, ram.pageCount - p0);
  const all = (1 << pages) - 1;
  pageMask &= all;
  if (pageMask === 0) return;
  const off = bytes.byteOffset;
  if ((off & 7) === 0 && (ram.ram8[chunk] === ram.zero8 || pageMask === all)) {
    const buf = bytes.buffer;
    ram.ram8[chunk] = bytes;
    ram.ram16[chunk] = new Uint16Array(buf, off, RAM_CHUNK_SIZE >>> 1);
    ram.ram32[chunk] = new Int32Array(buf, off, RAM_CHUNK_SIZE >>> 2);
    for (let i = 0; i < pages; i++) {
      if (!(pageMask & (1 << i))) continue;
      const page = p0 + i;
      // The chunk is backed now, so an unwritten page is only marked written (no allocation).
      if ((ram.watch[page] ?? 0) !== 0) ramWatchHit(ram, page << TARGET_PAGE_BITS, TARGET_PAGE_SIZE);
    }
    return;
  }
  for (let i = 0; i < pages; i++) {
    if (!(pageMask & (1 << i))) continue;
    const o = i << TARGET_PAGE_BITS;
    ramLoadPage(ram, p0 + i, bytes.subarray(o, o + TARGET_PAGE_SIZE));
  }
}

/** Copy `bytes` into RAM at offset `off` (must fit), honouring the watch bits page by page. */
export function ramWriteBytes(ram: Ram, off: number, bytes: Uint8Array): void {
  const fits = off >= 0 && off + bytes.length <= ram.ramSize;
  assert(fits, `write of ${bytes.length} at ${off} overruns RAM`);
  let done = 0;
  while (done < bytes.length) {
    const o = off + done;
    const n = Math.min(bytes.length - done, TARGET_PAGE_SIZE - (o & (TARGET_PAGE_SIZE - 1)));
    if ((ram.watch[o >>> TARGET_PAGE_BITS] ?? 0) !== 0) ramWatchHit(ram, o, n);
    const chunk = ram.ram8[o >>> RAM_CHUNK_BITS];
    assert(chunk !== undefined, 'chunk table too short');
    chunk.set(bytes.subarray(done, done + n), o & (RAM_CHUNK_SIZE - 1));
    done += n;
  }
}

/**
 * Make [off, off+len) read as zero without allocating: pages never written already do, so only
 * written pages are cleared (through the watch bits, like stores).
 */
export function ramZeroRange(ram: Ram, off: number, len: number): void {
  assert(off >= 0 && off + len <= ram.ramSize, `zeroing ${len} at ${off} overruns RAM`);
  let done = 0;
  while (done < len) {
    const o = off + done;
    const n = Math.min(len - done, TARGET_PAGE_SIZE - (o & (TARGET_PAGE_SIZE - 1)));
    const w = ram.watch[o >>> TARGET_PAGE_BITS] ?? 0;
    if ((w & WATCH_UNWRITTEN) === 0) {
      if (w !== 0) ramWatchHit(ram, o, n);
      const chunk = ram.ram8[o >>> RAM_CHUNK_BITS];
      assert(chunk !== undefined, 'chunk table too short');
      chunk.fill(0, o & (RAM_CHUNK_SIZE - 1), (o & (RAM_CHUNK_SIZE - 1)) + n);
    }
    done += n;
  }
}

/** Copy `out.length` bytes of RAM starting at offset `off` (must fit) into `out`. */
export function ramReadBytes(ram: Ram, off: number, out: Uint8Array): void {
  const fits = off >= 0 && off + out.length <= ram.ramSize;
  assert(fits, `read of ${out.length} at ${off} overruns RAM`);
  let done = 0;
  while (done < out.length) {
    const o = off + done;
    const n = Math.min(out.length - done, RAM_CHUNK_SIZE - (o & (RAM_CHUNK_SIZE - 1)));
    const chunk = ram.ram8[o >>> RAM_CHUNK_BITS];
    assert(chunk !== undefined, 'chunk table too short');
    const co = o & (RAM_CHUNK_SIZE - 1);
    out.set(chunk.subarray(co, co + n), done);
    done += n;
  }
}

/**
 * Forget all contents (every page reads zero again), the decode caches and all reservations.
 * Dirty logging stays as it was, with every page re-armed. For loadvm of a whole RAM image.
 */
export function ramDiscardAll(ram: Ram): void {
  const z8 = ram.zero8;
  const z16 = new Uint16Array(z8.buffer);
  const z32 = new Int32Array(z8.buffer);
  ram.ram8.fill(z8);
  ram.ram16.fill(z16);
  ram.ram32.fill(z32);
  ram.decode.fill(null);
  ram.blocks.fill(null);
  for (let c = 0; c < ram.decodeGen.length; c++) ram.decodeGen[c] = (ram.decodeGen[c]! + 1) >>> 0;
  ram.watch.fill(WATCH_UNWRITTEN | (ram.dirtyLogging ? WATCH_DIRTY_LOG : 0));
  ram.writtenPages = 0;
  for (const h of ram.resvHolders) h.resvAddr = -1;
}
