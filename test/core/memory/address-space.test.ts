// The address space: RAM pages allocated on first write (reads of untouched memory are zero),
// dirty logging, enumeration and loading of written pages, MMIO/ROM dispatch with decode errors
// instead of exceptions, and the memory cost of many idle machines.
// Method: direct calls on fresh address spaces; the memory test measures heap + ArrayBuffers.
import { describe, expect, it } from 'vitest';
import {
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  RAM_BASE,
  TARGET_PAGE_SIZE,
  addressSpaceAddRegion,
  addressSpaceAddRom,
  addressSpaceCreate,
  addressSpaceFetch,
  addressSpaceLd,
  addressSpaceRead,
  addressSpaceSt,
  addressSpaceWrite,
  ramDirtyLogStart,
  ramDirtyLogStop,
  ramDirtyPageCount,
  ramDiscardAll,
  ramForEachWrittenPage,
  ramLoadPage,
  ramTestAndClearDirty,
  ramZeroRange,
} from '../../../core/memory/index.ts';

const MiB = 1 << 20;

describe('RAM', () => {
  it('allocates nothing until written and reads untouched memory as zero', () => {
    const as = addressSpaceCreate(256 * MiB);
    expect(as.writtenPages).toBe(0);
    expect(addressSpaceLd(as, RAM_BASE + 123 * MiB, 4)).toBe(0);
    expect(as.txResult).toBe(MEMTX_OK);
    expect(as.ram8.every((c) => c === as.zero8)).toBe(true);
    addressSpaceSt(as, RAM_BASE + 5 * MiB + 2, 2, 0xbeef);
    expect(as.writtenPages).toBe(1);
    expect(as.ram8.filter((c) => c !== as.zero8)).toHaveLength(1);
    expect(addressSpaceLd(as, RAM_BASE + 5 * MiB + 2, 2)).toBe(0xbeef);
    expect(as.zero8.every((b) => b === 0)).toBe(true); // the shared zero chunk stays zero
  });
  it('lists written pages in order with their contents, and reloads them', () => {
    const as = addressSpaceCreate(MiB);
    addressSpaceSt(as, RAM_BASE + 0x3000, 4, 0x11223344);
    addressSpaceSt(as, RAM_BASE + 0x1fff, 2, 0xabcd); // straddles pages 1 and 2
    const pages: Array<[number, number[]]> = [];
    ramForEachWrittenPage(as, (p, bytes) =>
      pages.push([p, [bytes[0]!, bytes[TARGET_PAGE_SIZE - 1]!]]),
    );
    expect(pages).toEqual([
      [1, [0, 0xcd]],
      [2, [0xab, 0]],
      [3, [0x44, 0]],
    ]);
    const copy = addressSpaceCreate(MiB);
    ramForEachWrittenPage(as, (p, bytes) => ramLoadPage(copy, p, bytes.slice()));
    expect(addressSpaceLd(copy, RAM_BASE + 0x3000, 4)).toBe(0x11223344);
    expect(addressSpaceLd(copy, RAM_BASE + 0x1fff, 2)).toBe(0xabcd);
    ramDiscardAll(copy);
    expect([copy.writtenPages, addressSpaceLd(copy, RAM_BASE + 0x3000, 4)]).toEqual([0, 0]);
  });
  it('zeroes ranges without allocating untouched pages', () => {
    const as = addressSpaceCreate(MiB);
    addressSpaceSt(as, RAM_BASE + 0x10, 4, -1);
    ramZeroRange(as, 0, 0x8000);
    expect([as.writtenPages, addressSpaceLd(as, RAM_BASE + 0x10, 4)]).toEqual([1, 0]);
  });
  it('logs dirty pages while logging is on, once per test-and-clear', () => {
    const as = addressSpaceCreate(MiB);
    addressSpaceSt(as, RAM_BASE, 1, 1); // before logging: not recorded
    ramDirtyLogStart(as);
    expect(ramDirtyPageCount(as)).toBe(0);
    addressSpaceSt(as, RAM_BASE + 0x5000, 4, 1);
    addressSpaceSt(as, RAM_BASE + 0x5004, 4, 1);
    addressSpaceWrite(as, RAM_BASE + 0x7ffe, Uint8Array.from([1, 2, 3])); // pages 7 and 8
    expect(ramDirtyPageCount(as)).toBe(3);
    expect(ramTestAndClearDirty(as, 5)).toBe(true);
    expect(ramTestAndClearDirty(as, 5)).toBe(false);
    expect(ramTestAndClearDirty(as, 0)).toBe(false);
    addressSpaceSt(as, RAM_BASE + 0x5008, 4, 1);
    expect(ramTestAndClearDirty(as, 5)).toBe(true);
    ramDirtyLogStop(as);
    expect(as.dirtyBitmap).toBeNull();
    expect(as.watch.every((w) => (w & 8) === 0)).toBe(true);
  });
});

describe('MMIO and ROM', () => {
  it('dispatches to regions by offset and reports decode errors instead of throwing', () => {
    const as = addressSpaceCreate(MiB);
    const writes: number[] = [];
    addressSpaceAddRegion(as, {
      name: 'dev',
      base: 0x1000_0000,
      size: 8,
      read: (o) => 0x100 + o,
      write: (_o, _s, v) => writes.push(v),
      maxAccessSize: 2,
    });
    expect(addressSpaceLd(as, 0x1000_0003, 1)).toBe(0x03);
    expect(addressSpaceLd(as, 0x1000_0002, 2)).toBe(0x102);
    expect(addressSpaceLd(as, 0x1000_0004, 4)).toBe(0); // larger than maxAccessSize
    expect(as.txResult).toBe(MEMTX_DECODE_ERROR);
    addressSpaceSt(as, 0x1000_0006, 4, 1); // runs past the end of the region
    expect(as.txResult).toBe(MEMTX_DECODE_ERROR);
    addressSpaceSt(as, 0x2000_0000, 1, 1);
    expect(as.txResult).toBe(MEMTX_DECODE_ERROR);
    addressSpaceSt(as, 0x1000_0000, 1, 0x1ff);
    expect(writes).toEqual([0xff]);
  });
  it('refuses overlapping regions (a programmer error)', () => {
    const as = addressSpaceCreate(MiB);
    const dev = { name: 'a', base: 0x1000, size: 0x100, read: () => 0, write: () => undefined };
    addressSpaceAddRegion(as, dev);
    expect(() => addressSpaceAddRegion(as, { ...dev, name: 'b', base: 0x10ff })).toThrow(
      /overlaps a/,
    );
    expect(() => addressSpaceAddRegion(as, { ...dev, name: 'c', base: RAM_BASE })).toThrow(
      /overlaps RAM/,
    );
  });
  it('serves ROM for loads and fetches, ignores ROM writes, and fetches nothing from MMIO', () => {
    const as = addressSpaceCreate(MiB);
    addressSpaceAddRom(as, 'mrom', 0x1000, Uint8Array.from([0x13, 0, 0, 0, 9, 9, 9, 9]));
    addressSpaceAddRegion(as, {
      name: 'dev',
      base: 0x2000,
      size: 16,
      read: () => 0x13,
      write: () => undefined,
    });
    expect(addressSpaceFetch(as, 0x1000)).toBe(0x13);
    addressSpaceSt(as, 0x1004, 4, 0);
    expect([as.txResult, addressSpaceLd(as, 0x1004, 4)]).toEqual([MEMTX_OK, 0x09090909]);
    addressSpaceFetch(as, 0x2000);
    expect(as.txResult).toBe(MEMTX_DECODE_ERROR);
    const buf = new Uint8Array(3);
    expect(addressSpaceRead(as, 0x1003, buf)).toBe(MEMTX_OK);
    expect(Array.from(buf)).toEqual([0, 9, 9]);
  });
});

describe('memory cost', () => {
  it('keeps 100 idle 256 MiB address spaces well under 200 MiB', () => {
    globalThis.gc?.();
    const before = process.memoryUsage();
    const spaces = Array.from({ length: 100 }, () => addressSpaceCreate(256 * MiB));
    for (const as of spaces) addressSpaceSt(as, RAM_BASE, 4, 1); // a guest that touched one page
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(spaces).toHaveLength(100);
    expect(grown).toBeLessThan(200 * MiB);
    console.log(
      `100 idle 256M address spaces: ${(grown / MiB).toFixed(1)} MiB (heap + ArrayBuffers)`,
    );
  });
});
