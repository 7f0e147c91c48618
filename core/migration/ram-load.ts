// The RAM handler, load side (migration/ram.c ram_load_precopy, QEMU 7.2): one record per step
// (the block list, a ZERO, PAGE or XBZRLE page, EOS), with QEMU's checks and messages. Pages are
// staged per block (views into the received chunks, or a fill byte) and written to the blocks
// only by ramLoadCommit, once the whole stream has loaded.
// Invariant: a step changes `staged` only after every read of its record succeeded.

import { TARGET_PAGE_SIZE } from '../memory/index.ts';
import { EINVAL } from './errors.ts';
import { latin1String } from './qemu-file.ts';
import {
  type QEMUFileReader, qemuGetBe16, qemuGetBe32, qemuGetBuffer, qemuGetBufferView, qemuGetByte,
} from './qemu-file-reader.ts';
import {
  RAM_SAVE_FLAG_COMPRESS_PAGE, RAM_SAVE_FLAG_CONTINUE, RAM_SAVE_FLAG_EOS, RAM_SAVE_FLAG_HOOK,
  RAM_SAVE_FLAG_MEM_SIZE, RAM_SAVE_FLAG_PAGE, RAM_SAVE_FLAG_XBZRLE, RAM_SAVE_FLAG_ZERO,
} from './ram-block.ts';
import type { RamState } from './ram.ts';

/** What one load brought for RAM: per block, page number → its bytes or a fill byte. */
export interface RamLoadStaged {
  /** Block of the last named page record (-1: none). @qemu mis->last_recv_block */
  lastRecvBlock: number;
  pages: Array<Map<number, Uint8Array | number>>;
}

/** @qemu ram_load_setup */
export function ramLoadSetup(rs: RamState): RamLoadStaged {
  return { lastRecvBlock: -1, pages: rs.blocks.map(() => new Map()) };
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
    case RAM_SAVE_FLAG_PAGE:
      value = qemuGetBufferView(f, TARGET_PAGE_SIZE);
      break;
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
    staged.pages[bi]!.set(page, value);
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
  const prev = staged.pages[bi]!.get(page);
  if (prev instanceof Uint8Array) dst.set(prev);
  else if (typeof prev === 'number') dst.fill(prev);
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

/** Write every staged page to its block, in stream order per block. */
export function ramLoadCommit(rs: RamState, staged: RamLoadStaged): void {
  for (let bi = 0; bi < rs.blocks.length; bi++) {
    const block = rs.blocks[bi]!;
    for (const [page, v] of staged.pages[bi]!) {
      if (typeof v === 'number') block.fillPage(page, v);
      else block.writePage(page, v);
    }
  }
}
