// The RAM handler, load side (migration/ram.c ram_load_precopy, QEMU 7.2): one record per step
// (the block list, a ZERO, PAGE or XBZRLE page, EOS), with QEMU's checks and messages. Pages are
// staged per block: a page's bytes are copied, as the record is read, into a staging chunk of
// RAM_CHUNK_SIZE bytes laid out as the block's memory (carved from a slab when a page of it
// first arrives), a ZERO record keeps its fill byte. Nothing reaches the blocks until ramLoadCommit,
// once the whole stream has loaded; a block that can take whole chunks (guest RAM) then adopts
// the staging chunks as its memory instead of copying them. An incoming migration into a machine
// that has not run (LoadOptions.ramInPlace) writes guest RAM in place instead, as QEMU does: its
// owner resets RAM if the load fails.
// Invariant: a step changes `staged` only after every read of its record succeeded (a PAGE
// record is copied into its staging page only once all its bytes have arrived).

import { PAGES_PER_CHUNK, RAM_CHUNK_BITS, RAM_CHUNK_SIZE, TARGET_PAGE_BITS, TARGET_PAGE_SIZE } from '../memory/index.ts';
import { EINVAL } from './errors.ts';
import { latin1String } from './qemu-file.ts';
import {
  type QEMUFileReader, qemuGetBe16, qemuGetBe32, qemuGetBuffer, qemuGetBufferInto, qemuGetBufferView,
  qemuGetByte,
} from './qemu-file-reader.ts';
import {
  RAM_SAVE_FLAG_COMPRESS_PAGE, RAM_SAVE_FLAG_CONTINUE, RAM_SAVE_FLAG_EOS, RAM_SAVE_FLAG_HOOK,
  RAM_SAVE_FLAG_MEM_SIZE, RAM_SAVE_FLAG_PAGE, RAM_SAVE_FLAG_XBZRLE, RAM_SAVE_FLAG_ZERO,
} from './ram-block.ts';
import type { RamState } from './ram.ts';

const PAGE_CHUNK_SHIFT = RAM_CHUNK_BITS - TARGET_PAGE_BITS;
/** Page states in RamBlockStaged.state. */
const STAGED_NONE = 0;
const STAGED_DATA = 1;
const STAGED_FILL = 2;

/**
 * Staging chunks are carved from slabs of this many chunks (256 MiB), one slab allocated when
 * the first page of its range arrives: one big zeroed allocation, whose memory the OS provides
 * only as pages are touched, costs far less than many small ones (each allocation counts
 * towards the engine's external memory, whose growth triggers full garbage collections).
 */
const SLAB_CHUNKS_SHIFT = 12;

/** What one load brought for one block. */
interface RamBlockStaged {
  /** Per page: STAGED_NONE, STAGED_DATA (bytes in its chunk) or STAGED_FILL (byte in `fill`). */
  state: Uint8Array;
  fill: Uint8Array;
  /** Per chunk of RAM_CHUNK_SIZE bytes: the staging chunk, once a page of it has bytes. */
  chunks: Array<Uint8Array | undefined>;
  slabs: Array<ArrayBuffer | undefined>;
  /** Records are applied to the block as they are read (nothing is staged). */
  inPlace: boolean;
}

/** What one load brought for RAM, per block. */
export interface RamLoadStaged {
  /** Block of the last named page record (-1: none). @qemu mis->last_recv_block */
  lastRecvBlock: number;
  blocks: RamBlockStaged[];
}

/** @qemu ram_load_setup */
export function ramLoadSetup(rs: RamState, inPlace: boolean): RamLoadStaged {
  return {
    lastRecvBlock: -1,
    blocks: rs.blocks.map((b) => {
      const pages = b.usedLength / TARGET_PAGE_SIZE;
      return {
        state: new Uint8Array(pages), fill: new Uint8Array(pages),
        chunks: new Array<Uint8Array | undefined>(Math.ceil(pages / PAGES_PER_CHUNK)),
        slabs: [],
        inPlace: inPlace && b.inPlaceLoad === true,
      };
    }),
  };
}

/** The staging bytes of `page` (its chunk allocated if need be). */
function stagingPage(sb: RamBlockStaged, page: number): Uint8Array {
  const c = page >>> PAGE_CHUNK_SHIFT;
  let chunk = sb.chunks[c];
  if (chunk === undefined) {
    const si = c >>> SLAB_CHUNKS_SHIFT;
    let slab = sb.slabs[si];
    if (slab === undefined) {
      const first = si << SLAB_CHUNKS_SHIFT;
      const n = Math.min(1 << SLAB_CHUNKS_SHIFT, sb.chunks.length - first);
      slab = new ArrayBuffer(n * RAM_CHUNK_SIZE);
      sb.slabs[si] = slab;
    }
    const at = (c & ((1 << SLAB_CHUNKS_SHIFT) - 1)) * RAM_CHUNK_SIZE;
    chunk = new Uint8Array(slab, at, RAM_CHUNK_SIZE);
    sb.chunks[c] = chunk;
  }
  const o = (page & (PAGES_PER_CHUNK - 1)) << TARGET_PAGE_BITS;
  return chunk.subarray(o, o + TARGET_PAGE_SIZE);
}

/** @qemu ram_load: only version 4 (no message: the caller reports the section). */
export function ramLoadStart(_staged: RamLoadStaged, versionId: number): number {
  return versionId === 4 ? 0 : -EINVAL;
}

/** RAM_ADDR_FMT ("%" PRIx64) of hi:lo. */
function ramAddr(hi: number, lo: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0');
}

/** A u8 length and that many bytes, as C sees them (up to the first NUL). */
function readBlockName(f: QEMUFileReader): string {
  const len = qemuGetByte(f);
  const b = qemuGetBuffer(f, len);
  const nul = b.indexOf(0);
  return latin1String(nul >= 0 ? b.subarray(0, nul) : b);
}

/** @qemu ram_block_from_stream: the block index, or -1 after reporting why. */
function ramBlockFromStream(
  rs: RamState, f: QEMUFileReader, staged: RamLoadStaged, flags: number,
  report: (m: string) => void,
): number {
  if (flags & RAM_SAVE_FLAG_CONTINUE) {
    if (staged.lastRecvBlock < 0) report('Ack, bad migration stream!');
    return staged.lastRecvBlock;
  }
  const id = readBlockName(f);
  const bi = rs.blocks.findIndex((b) => b.idstr === id);
  if (bi < 0) report(`Can't find block ${id}`);
  return bi;
}

/**
 * Read one record. Returns 1 at EOS (end of the section body), 0 for more, or a negative errno
 * after QEMU's message.
 * @qemu migration/ram.c ram_load_precopy (one pass of its loop)
 */
export function ramLoadStep(
  rs: RamState, f: QEMUFileReader, staged: RamLoadStaged, report: (m: string) => void,
): number {
  const hi = qemuGetBe32(f);
  const lo = qemuGetBe32(f);
  const flags = lo & (TARGET_PAGE_SIZE - 1);
  const addr = (lo & ~(TARGET_PAGE_SIZE - 1)) >>> 0;
  if (flags & RAM_SAVE_FLAG_COMPRESS_PAGE) {
    // Compression is never enabled on a detvm destination.
    report('Received an unexpected compressed page');
    return -EINVAL;
  }
  let bi = -1;
  let page = -1;
  if (flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE)) {
    bi = ramBlockFromStream(rs, f, staged, flags, report);
    if (bi < 0 || hi !== 0 || addr >= rs.blocks[bi]!.usedLength) {
      report(`Illegal RAM offset ${ramAddr(hi, addr)}`);
      return -EINVAL;
    }
    page = addr / TARGET_PAGE_SIZE;
  }
  let value: Uint8Array | number | null = null;
  let ret = 0;
  switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
    case RAM_SAVE_FLAG_MEM_SIZE:
      ret = ramLoadMemSize(rs, f, BigInt(hi) * 0x1_0000_0000n + BigInt(addr), report);
      break;
    case RAM_SAVE_FLAG_ZERO:
      value = qemuGetByte(f);
      break;
    case RAM_SAVE_FLAG_PAGE: {
      // The usual case: the whole page has arrived and goes straight to RAM or its staging page.
      const sb = staged.blocks[bi]!;
      if (sb.inPlace) {
        value = qemuGetBufferView(f, TARGET_PAGE_SIZE);
        break;
      }
      if (qemuGetBufferInto(f, stagingPage(sb, page), 0, TARGET_PAGE_SIZE)) {
        sb.state[page] = STAGED_DATA;
        staged.lastRecvBlock = bi;
        return 0;
      }
      value = qemuGetBuffer(f, TARGET_PAGE_SIZE);
      break;
    }
    case RAM_SAVE_FLAG_XBZRLE:
      value = loadXbzrle(rs, f, staged, bi, page, report);
      if (value === null) {
        report(`Failed to decompress XBZRLE page at ${ramAddr(hi, addr)}`);
        ret = -EINVAL;
      }
      break;
    case RAM_SAVE_FLAG_EOS:
      return f.error || 1;
    default:
      // A RAM_SAVE_FLAG_HOOK needs an RDMA hook: without one QEMU sets -EINVAL silently.
      if (!(flags & RAM_SAVE_FLAG_HOOK)) {
        report(`Unknown combination of migration flags: 0x${flags.toString(16)}`);
      }
      ret = -EINVAL;
  }
  if (ret === 0) ret = f.error;
  if (ret < 0) return ret;
  if (value !== null) {
    const sb = staged.blocks[bi]!;
    if (sb.inPlace) {
      const block = rs.blocks[bi]!;
      if (typeof value === 'number') block.fillPage(page, value);
      else block.writePage(page, value);
    } else if (typeof value === 'number') {
      sb.state[page] = STAGED_FILL;
      sb.fill[page] = value;
    } else {
      stagingPage(sb, page).set(value);
      sb.state[page] = STAGED_DATA;
    }
    staged.lastRecvBlock = bi;
  }
  return 0;
}

/** The block list of a START section: every named block must exist with the same length. */
function ramLoadMemSize(
  rs: RamState, f: QEMUFileReader, total: bigint, report: (m: string) => void,
): number {
  let left = total;
  // Each entry consumes at least 9 bytes, so a bogus total ends with the stream: past the end
  // of a final stream the name reads as "" and matches no block.
  while (left !== 0n) {
    const id = readBlockName(f);
    const hi = qemuGetBe32(f);
    const lo = qemuGetBe32(f);
    const length = BigInt(hi) * 0x1_0000_0000n + BigInt(lo);
    const block = rs.blocks.find((b) => b.idstr === id);
    if (block === undefined) {
      report(`Unknown ramblock "${id}", cannot accept migration`);
      return -EINVAL;
    }
    if (length !== BigInt(block.usedLength)) {
      // qemu_ram_resize of a block that is not resizable.
      const local = block.usedLength.toString(16);
      report(`Size mismatch: ${id}: 0x${length.toString(16)} != 0x${local}: Invalid argument`);

      return -EINVAL;
    }
    left = BigInt.asUintN(64, left - length);
  }
  return 0;
}

/**
 * An XBZRLE page: a delta against the page as last received (or as it is now). Returns the new
 * page, or null after reporting QEMU's reason.
 * @qemu migration/ram.c load_xbzrle, migration/xbzrle.c xbzrle_decode_buffer
 */
function loadXbzrle(
  rs: RamState, f: QEMUFileReader, staged: RamLoadStaged, bi: number, page: number,
  report: (m: string) => void,
): Uint8Array | null {
  const xhFlags = qemuGetByte(f);
  const xhLen = qemuGetBe16(f);
  if (xhFlags !== 1) {
    report('Failed to load XBZRLE page - wrong compression!');
    return null;
  }
  if (xhLen > TARGET_PAGE_SIZE) {
    report('Failed to load XBZRLE page - len overflow!');
    return null;
  }
  const src = qemuGetBuffer(f, xhLen);
  const dst = new Uint8Array(TARGET_PAGE_SIZE);
  const sb = staged.blocks[bi]!;
  const st = sb.state[page];
  if (st === STAGED_DATA) dst.set(stagingPage(sb, page));
  else if (st === STAGED_FILL) dst.fill(sb.fill[page]!);
  else dst.set(rs.blocks[bi]!.readPage(page) ?? dst);
  if (xbzrleDecode(src, dst) < 0) {
    report('Failed to load XBZRLE page - decode error!');
    return null;
  }
  return dst;
}

/** @qemu uleb128_decode_small: [value, bytes used] or null beyond 14 bits. */
function uleb128(src: Uint8Array, i: number): [number, number] | null {
  const b0 = src[i]!;
  if (!(b0 & 0x80)) return [b0, 1];
  const b1 = src[i + 1]!;
  if (b1 & 0x80) return null;
  return [(b0 & 0x7f) | (b1 << 7), 2];
}

/** Apply runs of (unchanged length, changed length, changed bytes) to `dst`. */
function xbzrleDecode(src: Uint8Array, dst: Uint8Array): number {
  let i = 0;
  let d = 0;
  while (i < src.length) {
    if (src.length - i < 2) return -1;
    const z = uleb128(src, i);
    if (z === null || (i !== 0 && z[0] === 0)) return -1;
    i += z[1];
    d += z[0];
    if (d > dst.length || src.length - i < 2) return -1;
    const nz = uleb128(src, i);
    if (nz === null || nz[0] === 0) return -1;
    i += nz[1];
    if (d + nz[0] > dst.length || i + nz[0] > src.length) return -1;
    dst.set(src.subarray(i, i + nz[0]), d);
    d += nz[0];
    i += nz[0];
  }
  return d;
}

/**
 * Write every staged page to its block: per chunk, the pages that brought bytes at once (the
 * block may adopt the staging chunk), then the fill bytes of ZERO records.
 */
export function ramLoadCommit(rs: RamState, staged: RamLoadStaged): void {
  for (let bi = 0; bi < rs.blocks.length; bi++) {
    const block = rs.blocks[bi]!;
    const sb = staged.blocks[bi]!;
    const state = sb.state;
    for (let c = 0; c < sb.chunks.length; c++) {
      const chunk = sb.chunks[c];
      if (chunk === undefined) continue;
      const p0 = c * PAGES_PER_CHUNK;
      let mask = 0;
      for (let i = 0; i < PAGES_PER_CHUNK && p0 + i < state.length; i++) {
        if (state[p0 + i] === STAGED_DATA) mask |= 1 << i;
      }
      if (mask === 0) continue;
      if (block.loadChunk) {
        // Pages staged as data and later as a fill byte hold stale bytes: zero them, since the
        // block may adopt the chunk (its unmasked pages must be zero).
        for (let i = 0; i < PAGES_PER_CHUNK && p0 + i < state.length; i++) {
          if (!(mask & (1 << i)) && state[p0 + i] !== STAGED_NONE) {
            chunk.fill(0, i << TARGET_PAGE_BITS, (i + 1) << TARGET_PAGE_BITS);
          }
        }
        block.loadChunk(c, chunk, mask);
      } else {
        for (let i = 0; i < PAGES_PER_CHUNK; i++) {
          if (mask & (1 << i)) block.writePage(p0 + i, chunk.subarray(i << TARGET_PAGE_BITS, (i + 1) << TARGET_PAGE_BITS));
        }
      }
      sb.chunks[c] = undefined;
    }
    for (let page = 0; page < state.length; page++) {
      if (state[page] === STAGED_FILL) block.fillPage(page, sb.fill[page]!);
    }
  }
}
