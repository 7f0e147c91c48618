// What migration needs of a RAMBlock (include/exec/ramblock.h), and adapters over detvm's
// guest RAM (core/memory) and over a plain byte array (ROM-like blocks such as the MROM).
// The RAM handler reads pages to send them, writes or fills pages to apply a load, and reads
// the dirty log into its own migration bitmap (QEMU's DIRTY_MEMORY_MIGRATION client). The RAM
// record flags live here too, shared by the save and load sides.
// Invariant: page numbers are 0 .. usedLength/TARGET_PAGE_SIZE - 1.

import { assert } from '../util/index.ts';
import {
  type Ram, TARGET_PAGE_BITS, TARGET_PAGE_SIZE, RAM_CHUNK_BITS, RAM_CHUNK_SIZE, WATCH_UNWRITTEN,
  ramDirtyLogStart, ramDirtyLogStop, ramLoadChunk, ramLoadPage, ramTestAndClearDirty, ramZeroRange,
} from '../memory/index.ts';

/** Flags in the low bits of a RAM record's be64 header (migration/ram.c RAM_SAVE_FLAG_*). */
export const RAM_SAVE_FLAG_FULL = 0x01;
export const RAM_SAVE_FLAG_ZERO = 0x02;
export const RAM_SAVE_FLAG_MEM_SIZE = 0x04;
export const RAM_SAVE_FLAG_PAGE = 0x08;
export const RAM_SAVE_FLAG_EOS = 0x10;
export const RAM_SAVE_FLAG_CONTINUE = 0x20;
export const RAM_SAVE_FLAG_XBZRLE = 0x40;
export const RAM_SAVE_FLAG_HOOK = 0x80;
export const RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100;

/** A block of guest memory as the RAM handler sees it. Runtime wiring, not VM state. */
export interface RamBlock {
  /** QEMU's RAMBlock idstr ("riscv_virt_board.ram"). */
  idstr: string;
  /** Bytes; a multiple of TARGET_PAGE_SIZE. */
  usedLength: number;
  /**
   * The page's bytes (a view valid until the next guest store: send it at once), or null when
   * the page is known to read as zero without looking (never written).
   */
  readPage(page: number): Uint8Array | null;
  /** Overwrite a page (applying a load). */
  writePage(page: number, bytes: Uint8Array): void;
  /** Fill a page with `value` (a ZERO record; 0 skips pages that already read as zero). */
  fillPage(page: number, value: number): void;
  /**
   * Optional bulk form of writePage for the RAM_CHUNK_SIZE bytes of chunk `chunk` (pages
   * chunk * 16 ...): the pages whose bit is set in `pageMask` are loaded from `bytes`, which the
   * block may keep (the caller gives it up; a whole ArrayBuffer, zero outside the masked pages).
   */
  loadChunk?(chunk: number, bytes: Uint8Array, pageMask: number): void;
  /** Guest RAM, which a load may write in place (see LoadOptions.ramInPlace). */
  inPlaceLoad?: boolean;
  /** Start logging guest writes, with a clean log. */
  dirtyLogStart(): void;
  dirtyLogStop(): void;
  /**
   * Set in `bmap` (one bit per page, LSB first) the pages written since the last sync or since
   * the log started, clear them in the log, and return how many bits were newly set in `bmap`.
   */
  dirtyLogSync(bmap: Uint8Array): number;
}

function popcount8(b: number): number {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
}

/** The guest RAM of core/memory as a RAM block. */
export function ramBlockFromRam(ram: Ram, idstr: string): RamBlock {
  return {
    idstr,
    usedLength: ram.ramSize,
    inPlaceLoad: true,
    readPage(page) {
      if ((ram.watch[page] ?? WATCH_UNWRITTEN) & WATCH_UNWRITTEN) return null;
      const chunk = ram.ram8[page >>> (RAM_CHUNK_BITS - TARGET_PAGE_BITS)]!;
      const o = (page << TARGET_PAGE_BITS) & (RAM_CHUNK_SIZE - 1);
      return chunk.subarray(o, o + TARGET_PAGE_SIZE);
    },
    writePage(page, bytes) {
      ramLoadPage(ram, page, bytes);
    },
    loadChunk(chunk, bytes, pageMask) {
      ramLoadChunk(ram, chunk, bytes, pageMask);
    },
    fillPage(page, value) {
      if (value === 0) {
        if (((ram.watch[page] ?? 0) & WATCH_UNWRITTEN) === 0) {
          ramZeroRange(ram, page << TARGET_PAGE_BITS, TARGET_PAGE_SIZE);
        }
        return;
      }
      ramLoadPage(ram, page, new Uint8Array(TARGET_PAGE_SIZE).fill(value));
    },
    dirtyLogStart() {
      ramDirtyLogStart(ram);
    },
    dirtyLogStop() {
      ramDirtyLogStop(ram);
    },
    dirtyLogSync(bmap) {
      const log = ram.dirtyBitmap;
      if (log === null) return 0;
      let added = 0;
      for (let i = 0; i < log.length; i++) {
        const b = log[i]!;
        if (b === 0) continue;
        added += popcount8(b & ~bmap[i]!);
        bmap[i] = bmap[i]! | b;
        // Clearing through the memory layer re-arms each page's watch for the next store.
        for (let bit = 0; bit < 8; bit++) {
          if (b & (1 << bit)) ramTestAndClearDirty(ram, i * 8 + bit);
        }
      }
      return added;
    },
  };
}

/**
 * A block backed by `bytes` (exactly the block's length), for ROM-like memory that only
 * loads and resets write: it has no dirty log, so live migration sends it in the first pass.
 */
export function ramBlockFromBytes(idstr: string, bytes: Uint8Array): RamBlock {
  assert(bytes.length > 0 && bytes.length % TARGET_PAGE_SIZE === 0,
    `RAM block ${idstr}: ${bytes.length} bytes is not a positive multiple of ${TARGET_PAGE_SIZE}`);
  return {
    idstr,
    usedLength: bytes.length,
    readPage: (page) => bytes.subarray(page * TARGET_PAGE_SIZE, (page + 1) * TARGET_PAGE_SIZE),
    writePage: (page, data) => bytes.set(data, page * TARGET_PAGE_SIZE),
    fillPage: (page, value) => {
      bytes.fill(value, page * TARGET_PAGE_SIZE, (page + 1) * TARGET_PAGE_SIZE);
    },

    dirtyLogStart: () => undefined,
    dirtyLogStop: () => undefined,
    dirtyLogSync: () => 0,
  };
}
