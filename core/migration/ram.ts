// The RAM handler, save side (migration/ram.c, QEMU 7.2): registered as the iterable section
// "ram" (instance 0, version 4). Setup sends the block list (MEM_SIZE) and marks every page
// dirty; each iteration scans the migration bitmap from where the last one stopped and sends
// dirty pages as ZERO or PAGE records until the writer's rate limit; completion syncs the
// dirty log and sends the rest. Page records name their block unless it is the block of the
// previous record (CONTINUE). This is what live pre-copy builds on: set a rate limit, iterate,
// ask ramSavePending how much is left, and complete when it is small enough.
// Invariant: migrationDirtyPages equals the number of set bits in the bitmaps.

import { assert } from '../util/index.ts';
import { TARGET_PAGE_SIZE } from '../memory/index.ts';
import {
  type RamBlock, RAM_SAVE_FLAG_CONTINUE, RAM_SAVE_FLAG_EOS, RAM_SAVE_FLAG_MEM_SIZE,
  RAM_SAVE_FLAG_PAGE, RAM_SAVE_FLAG_ZERO,
} from './ram-block.ts';
import {
  type RamLoadStaged, ramLoadCommit, ramLoadSetup, ramLoadStart, ramLoadStep,
} from './ram-load.ts';
import {
  type QEMUFileWriter, qemuFileRateLimit, qemuPutBe64, qemuPutBuffer, qemuPutByte,
  qemuPutCountedString,
} from './qemu-file.ts';
import { registerSavevmLive, type SaveStateEntry, type SaveVMState } from './savevm.ts';


/** QEMU's ram_counters, as `info migrate` and query-migrate show them. */
export interface RamCounters {
  /** Bytes the RAM handler put in the stream (headers included). */
  transferred: number;
  /** Pages sent as ZERO records. */
  duplicate: number;
  /** Pages sent as PAGE records, and their bytes. */
  normal: number;
  normalBytes: number;
  dirtySyncCount: number;
}

/** The RAM handler of one machine: its blocks and one outgoing migration's progress. */
export interface RamState {
  /** Largest first, registration order among equals (QEMU's ram_list order). */
  blocks: RamBlock[];
  /** Migration bitmap per block, one bit per page, LSB first; empty when not migrating. */
  bmap: Uint8Array[];
  migrationDirtyPages: number;
  /** Where the last search stopped (-1: none yet). @qemu last_seen_block, last_page */
  lastSeenBlock: number;
  lastPage: number;
  /** Block of the last page record (-1: none); the next record for it uses CONTINUE. */
  lastSentBlock: number;
  counters: RamCounters;
  active: boolean;
  /** Called after each dirty-bitmap sync with the new sync count (MIGRATION_PASS). */
  onSync: ((dirtySyncCount: number) => void) | null;
}

function ramCountersZero(): RamCounters {
  return { transferred: 0, duplicate: 0, normal: 0, normalBytes: 0, dirtySyncCount: 0 };
}

interface PageSearch {

  block: number;
  page: number;
  completeRound: boolean;
}

/**
 * Register the RAM handler over `blocks` (each with a unique idstr). Returns its state, which
 * holds the counters of the current or last outgoing migration.
 * @qemu migration/ram.c ram_mig_init
 */
export function ramMigInit(
  sv: SaveVMState, blocks: RamBlock[],
): { rs: RamState; se: SaveStateEntry } {
  const ids = new Set(blocks.map((b) => b.idstr));
  assert(ids.size === blocks.length, 'RAM blocks must have distinct idstrs');
  for (const b of blocks) {
    assert(b.idstr.length > 0 && b.idstr.length <= 255,
      `RAM block idstr '${b.idstr}' must be 1..255 bytes`);
    assert(b.usedLength > 0 && b.usedLength % TARGET_PAGE_SIZE === 0,
      `RAM block ${b.idstr}: bad length ${b.usedLength}`);
  }
  // Stable sort: QEMU inserts a block before the first smaller one.
  const sorted = blocks.map((b, i) => ({ b, i }))
    .sort((x, y) => y.b.usedLength - x.b.usedLength || x.i - y.i)
    .map((x) => x.b);
  const rs: RamState = {
    blocks: sorted, bmap: [], migrationDirtyPages: 0, lastSeenBlock: -1, lastPage: 0,
    lastSentBlock: -1, counters: ramCountersZero(), active: false, onSync: null,
  };
  const se = registerSavevmLive(sv, 'ram', 0, 4, {
    saveSetup: (f) => ramSaveSetup(rs, f),
    saveLiveIterate: (f) => ramSaveIterate(rs, f),
    saveLiveCompletePrecopy: (f, pause) => ramSaveComplete(rs, f, pause),
    saveLivePending: (max) => ramSavePending(rs, max),
    saveCleanup: () => ramSaveCleanup(rs),
    loadSetup: (opts) => ramLoadSetup(rs, opts.ramInPlace),
    loadStart: (staged, versionId) => ramLoadStart(staged as RamLoadStaged, versionId),
    loadStep: (f, staged, report) => ramLoadStep(rs, f, staged as RamLoadStaged, report),
    loadCommit: (staged) => ramLoadCommit(rs, staged as RamLoadStaged),
  });
  return { rs, se };
}

/** Total bytes of all blocks. @qemu ram_bytes_total */
export function ramBytesTotal(rs: RamState): number {
  return rs.blocks.reduce((n, b) => n + b.usedLength, 0);
}

/** Bytes of dirty pages not sent yet (query-migrate's "remaining"). */
export function ramBytesRemaining(rs: RamState): number {
  return rs.migrationDirtyPages * TARGET_PAGE_SIZE;
}

/** OR every block's dirty log into the migration bitmap. @qemu migration_bitmap_sync */
export function migrationBitmapSync(rs: RamState): void {
  assert(rs.active, 'migration_bitmap_sync outside a migration');
  for (let i = 0; i < rs.blocks.length; i++) {
    rs.migrationDirtyPages += rs.blocks[i]!.dirtyLogSync(rs.bmap[i]!);
  }
  rs.counters.dirtySyncCount++;
  rs.onSync?.(rs.counters.dirtySyncCount);
}

/** Block list, every page dirty, dirty logging on. @qemu ram_save_setup (ram_init_all) */
function ramSaveSetup(rs: RamState, f: QEMUFileWriter): number {
  const before = f.transferred;
  rs.counters = ramCountersZero();
  rs.bmap = rs.blocks.map((b) => {
    const pages = b.usedLength / TARGET_PAGE_SIZE;
    const m = new Uint8Array(Math.ceil(pages / 8)).fill(0xff);
    if (pages % 8) m[m.length - 1] = (1 << (pages % 8)) - 1;
    return m;
  });
  rs.migrationDirtyPages = ramBytesTotal(rs) / TARGET_PAGE_SIZE;
  rs.lastSeenBlock = -1;
  rs.lastPage = 0;
  rs.lastSentBlock = -1;
  rs.active = true;
  for (const b of rs.blocks) b.dirtyLogStart();
  migrationBitmapSync(rs);
  qemuPutBe64(f, ramBytesTotal(rs) + RAM_SAVE_FLAG_MEM_SIZE);
  for (const b of rs.blocks) {
    qemuPutCountedString(f, b.idstr);
    qemuPutBe64(f, b.usedLength);
  }
  qemuPutBe64(f, RAM_SAVE_FLAG_EOS);
  rs.counters.transferred += f.transferred - before;
  return 0;
}

/**
 * Pages until the writer's rate limit, then EOS: 1 when a whole round found nothing dirty.
 * @qemu ram_save_iterate
 */
function ramSaveIterate(rs: RamState, f: QEMUFileWriter): number {
  const before = f.transferred;
  let done = 0;
  while (!qemuFileRateLimit(f)) {
    if (ramFindAndSaveBlock(rs, f) === 0) {
      done = 1;
      break;
    }
  }
  qemuPutBe64(f, RAM_SAVE_FLAG_EOS);
  rs.counters.transferred += f.transferred - before;
  return f.error < 0 ? f.error : done;
}

/**
 * Sync the log, send every dirty page regardless of the rate limit, EOS.
 * @qemu ram_save_complete
 */
function* ramSaveComplete(rs: RamState, f: QEMUFileWriter, pause: () => boolean): Generator<void, number, void> {
  migrationBitmapSync(rs);
  const limit = rs.migrationDirtyPages + 1;
  let before = f.transferred;
  for (let n = 0; ; n++) {
    assert(n <= limit, 'ram_save_complete sent more pages than were dirty');
    if (ramFindAndSaveBlock(rs, f) === 0) break;
    if (pause()) {
      // Account what went out so far: whoever resumes us counts its own bytes.
      rs.counters.transferred += f.transferred - before;
      yield;
      before = f.transferred;
    }
  }
  qemuPutBe64(f, RAM_SAVE_FLAG_EOS);
  rs.counters.transferred += f.transferred - before;
  return f.error;
}

/**
 * Dirty bytes left; when fewer than `maxSize`, sync the dirty log first so the estimate
 * includes what the guest wrote since. @qemu ram_save_pending
 */
export function ramSavePending(rs: RamState, maxSize: number): number {
  let remaining = ramBytesRemaining(rs);
  if (rs.active && remaining < maxSize) {
    migrationBitmapSync(rs);
    remaining = ramBytesRemaining(rs);
  }
  return remaining;
}

/** Dirty logging off, bitmaps dropped. @qemu ram_save_cleanup */
function ramSaveCleanup(rs: RamState): void {
  if (!rs.active) return;
  for (const b of rs.blocks) b.dirtyLogStop();
  rs.bmap = [];
  rs.migrationDirtyPages = 0;
  rs.active = false;
}

/** First set bit at or after `start`, or `pages`. @qemu migration_bitmap_find_dirty */
function findNextDirty(bmap: Uint8Array, pages: number, start: number): number {
  let p = start;
  while (p < pages) {
    const byte = bmap[p >>> 3]!;
    if (byte === 0) p = (p | 7) + 1;
    else if (byte & (1 << (p & 7))) return p;
    else p++;
  }
  return pages;
}

/**
 * Send the next dirty page after where the last search stopped. 0: none left.
 * @qemu ram_find_and_save_block
 */
function ramFindAndSaveBlock(rs: RamState, f: QEMUFileWriter): number {
  if (rs.blocks.length === 0) return 0;
  if (rs.lastSeenBlock < 0) {
    rs.lastSeenBlock = 0;
    rs.lastPage = 0;
  }
  const pss: PageSearch = { block: rs.lastSeenBlock, page: rs.lastPage, completeRound: false };
  let pages = 0;
  // Each pass either sends a page or moves to the next block; two rounds bound it.
  for (let guard = 0; pages === 0; guard++) {
    assert(guard <= 2 * rs.blocks.length + 2, 'ram_find_and_save_block did not terminate');
    const r = findDirtyBlock(rs, pss);
    if (r === 'found') pages = ramSaveHostPage(rs, pss, f);
    else if (r === 'give-up') break;
  }
  rs.lastSeenBlock = pss.block;
  rs.lastPage = pss.page;
  return pages;
}

/** @qemu find_dirty_block */
function findDirtyBlock(rs: RamState, pss: PageSearch): 'found' | 'again' | 'give-up' {
  // No closure here: this runs once per page sent, and tsx names every closure it creates.
  const pages = rs.blocks[pss.block]!.usedLength / TARGET_PAGE_SIZE;
  pss.page = findNextDirty(rs.bmap[pss.block]!, pages, pss.page);
  if (pss.completeRound && pss.block === rs.lastSeenBlock && pss.page >= rs.lastPage) {
    return 'give-up';
  }
  if (pss.page >= pages) {
    pss.page = 0;
    pss.block++;
    if (pss.block >= rs.blocks.length) {
      pss.block = 0;
      pss.completeRound = true;
    }
    return 'again';
  }
  return 'found';
}

/** Clear the page's dirty bit and send it. @qemu ram_save_host_page (host page = target page) */
function ramSaveHostPage(rs: RamState, pss: PageSearch, f: QEMUFileWriter): number {
  const bmap = rs.bmap[pss.block]!;
  const bit = 1 << (pss.page & 7);
  assert(bmap[pss.page >>> 3]! & bit, 'found page is not dirty');
  bmap[pss.page >>> 3] = bmap[pss.page >>> 3]! & ~bit;
  rs.migrationDirtyPages--;
  ramSaveTargetPage(rs, f, pss.block, pss.page);
  pss.page++;
  return 1;
}

function pageIsZero(d: Uint8Array): boolean {
  for (let i = 0; i < d.length; i += 8) {
    if (d[i]! | d[i + 1]! | d[i + 2]! | d[i + 3]! | d[i + 4]! | d[i + 5]! | d[i + 6]! | d[i + 7]!) {
      return false;
    }
  }
  return true;
}

/**
 * A ZERO record (page of zeros: "duplicate") or a PAGE record ("normal").
 * @qemu ram_save_target_page
 */
function ramSaveTargetPage(rs: RamState, f: QEMUFileWriter, bi: number, page: number): void {
  const data = rs.blocks[bi]!.readPage(page);
  const offset = page * TARGET_PAGE_SIZE;
  if (data === null || pageIsZero(data)) {
    savePageHeader(rs, f, bi, offset + RAM_SAVE_FLAG_ZERO);
    qemuPutByte(f, 0);
    rs.counters.duplicate++;
  } else {
    savePageHeader(rs, f, bi, offset + RAM_SAVE_FLAG_PAGE);
    qemuPutBuffer(f, data);
    rs.counters.normal++;
    rs.counters.normalBytes += TARGET_PAGE_SIZE;
  }
}

/**
 * be64 offset|flags, then the block's idstr unless it is the last block sent.
 * @qemu save_page_header
 */
function savePageHeader(rs: RamState, f: QEMUFileWriter, bi: number, offsetFlags: number): void {
  const same = bi === rs.lastSentBlock;
  qemuPutBe64(f, same ? offsetFlags + RAM_SAVE_FLAG_CONTINUE : offsetFlags);
  if (!same) {
    qemuPutCountedString(f, rs.blocks[bi]!.idstr);
    rs.lastSentBlock = bi;
  }
}
