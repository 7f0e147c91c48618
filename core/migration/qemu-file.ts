// QEMUFile, writing side: the byte stream under savevm and migration (migration/qemu-file.c).
// A writer appends big-endian values to a buffer and hands it, when full, to an optional sink (a
// file or a socket adapter in core/host); without a sink it keeps the whole stream, as a list of
// filled segments that are joined only when asked for (no copying while writing).
// Rate limiting lets live migration send a bounded amount per period. The reading side is in
// qemu-file-reader.ts. Invariants: errors are sticky (the first one wins); `transferred`
// counts every byte put.

import { assert } from '../util/index.ts';
import type { QEMUFileReader } from './qemu-file-reader.ts';

/** The buffer size after which a writer with a sink flushes (QEMU's IO_BUF_SIZE). */
export const IO_BUF_SIZE = 32768;
/** Segment size of a writer without a sink. */
const SEGMENT_SIZE = 1 << 20;

/**
 * Receives a full buffer; must consume or copy it before returning. Returns 0 or -errno; to a
 * donating writer, 1 when it kept a reference (the writer then continues in fresh memory).
 */
export type QEMUFileSink = (bytes: Uint8Array) => number;

/** A stream being written. Runtime I/O state, not VM state. */
export interface QEMUFileWriter {
  buf: Uint8Array;
  /** Bytes in `buf` not yet handed to the sink or moved to `segments`. */
  len: number;
  sink: QEMUFileSink | null;
  /** Without a sink: the filled buffers before `buf`, oldest first. */
  segments: Uint8Array[];
  /** Flush to the sink once this many bytes are buffered. */
  flushSize: number;
  /** Bytes put so far, flushed or not. @qemu qemu_file_transferred */
  transferred: number;
  /** Rate limit in bytes per period; 0 means unlimited. */
  rateLimitMax: number;
  rateLimitUsed: number;
  /** 0 or a negative errno; sticky. */
  error: number;
  /** The sink may keep what it is handed (and says so): the writer then moves to fresh memory. */
  donate: boolean;
  /**
   * The sink is backed up: the writer's rate limit counts as reached until the owner clears
   * this (where QEMU's thread would block in a write, detvm's ends the iteration).
   */
  throttled: boolean;
}

/** Donating writers carve their buffers from slabs of this size (fewer, larger allocations). */
const DONATE_SLAB_SIZE = 8 << 20;

/** After a donating flush of `used` bytes: continue right after them, or in a new slab. */
function donateNextBuffer(f: QEMUFileWriter, used: number): void {
  const size = f.buf.length;
  const at = (f.buf.byteOffset + used + 7) & ~7;
  f.buf = at + size <= f.buf.buffer.byteLength
    ? new Uint8Array(f.buf.buffer, at, size)
    : new Uint8Array(new ArrayBuffer(Math.max(DONATE_SLAB_SIZE, size)), 0, size);
}

/**
 * Create a writer. With `sink` it flushes every `flushSize` bytes (QEMU's 32 KiB by default; a
 * file sink may prefer more, fewer system calls); without it keeps everything.
 */
export function qemuFileWriterCreate(
  sink: QEMUFileSink | null = null, flushSize = IO_BUF_SIZE, opts: { donate?: boolean } = {},
): QEMUFileWriter {
  assert(Number.isInteger(flushSize) && flushSize >= 512, `bad flush size ${flushSize}`);
  return {
    buf: new Uint8Array(sink ? flushSize + 8192 : SEGMENT_SIZE), len: 0, sink, segments: [],
    flushSize, transferred: 0, rateLimitMax: 0, rateLimitUsed: 0, error: 0,
    donate: opts.donate === true && sink !== null, throttled: false,
  };
}

/** Set the sticky error unless one is already set. @qemu qemu_file_set_error */
export function qemuFileSetError(f: QEMUFileWriter | QEMUFileReader, ret: number): void {
  assert(ret < 0, `qemu_file_set_error with non-negative ${ret}`);
  if (f.error === 0) f.error = ret;
}

/** @qemu qemu_file_get_error */
export function qemuFileGetError(f: QEMUFileWriter | QEMUFileReader): number {
  return f.error;
}

/** Hand buffered bytes to the sink. A writer without a sink keeps them. @qemu qemu_fflush */
export function qemuFflush(f: QEMUFileWriter): void {
  if (f.sink === null || f.len === 0) return;
  if (f.error === 0) {
    const r = f.sink(f.buf.subarray(0, f.len));
    if (r < 0) qemuFileSetError(f, r);
    else if (r > 0 && f.donate) donateNextBuffer(f, f.len);
  }
  f.len = 0;
}

/** Make room for `n` more bytes: flush when there is a sink, else start a new segment. */
function reserve(f: QEMUFileWriter, n: number): void {
  if (f.len + n <= f.buf.length) return;
  if (f.sink !== null) {
    qemuFflush(f);
    if (n <= f.buf.length) return;
    f.buf = new Uint8Array(n + 8192);
    return;
  }
  if (f.len > 0) f.segments.push(f.buf.subarray(0, f.len));
  f.buf = new Uint8Array(Math.max(SEGMENT_SIZE, n));
  f.len = 0;
}

function account(f: QEMUFileWriter, n: number): void {
  f.transferred += n;
  f.rateLimitUsed += n;
  if (f.sink !== null && f.len >= f.flushSize) qemuFflush(f);
}

/** @qemu qemu_put_byte (the low 8 bits of `v`) */
export function qemuPutByte(f: QEMUFileWriter, v: number): void {
  if (f.error) return;
  reserve(f, 1);
  f.buf[f.len++] = v & 0xff;
  account(f, 1);
}

/** @qemu qemu_put_be16 (the low 16 bits of `v`) */
export function qemuPutBe16(f: QEMUFileWriter, v: number): void {
  if (f.error) return;
  reserve(f, 2);
  const b = f.buf;
  b[f.len] = (v >>> 8) & 0xff;
  b[f.len + 1] = v & 0xff;
  f.len += 2;
  account(f, 2);
}

/** @qemu qemu_put_be32 (the low 32 bits of `v`) */
export function qemuPutBe32(f: QEMUFileWriter, v: number): void {
  if (f.error) return;
  reserve(f, 4);
  const b = f.buf;
  const o = f.len;
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
  f.len = o + 4;
  account(f, 4);
}

/**
 * Put a 64-bit value. A number must be a safe integer (negative ones are written in two's
 * complement, so -1 is 0xffffffffffffffff); a bigint is taken modulo 2^64.
 * @qemu qemu_put_be64
 */
export function qemuPutBe64(f: QEMUFileWriter, v: number | bigint): void {
  let hi: number;
  let lo: number;
  if (typeof v === 'bigint') {
    const u = BigInt.asUintN(64, v);
    hi = Number(u >> 32n);
    lo = Number(u & 0xffffffffn);
  } else {
    assert(Number.isSafeInteger(v), `qemu_put_be64: ${v} is not a safe integer`);
    hi = Math.floor(v / 0x1_0000_0000);
    lo = v - hi * 0x1_0000_0000;
  }
  qemuPutBe32(f, hi >>> 0);
  qemuPutBe32(f, lo >>> 0);
}

/** @qemu qemu_put_buffer */
export function qemuPutBuffer(f: QEMUFileWriter, bytes: Uint8Array): void {
  if (f.error) return;
  reserve(f, bytes.length);
  f.buf.set(bytes, f.len);
  f.len += bytes.length;
  account(f, bytes.length);
}

/** Put `n` zero bytes (VMSTATE_UNUSED). */
export function qemuPutZeros(f: QEMUFileWriter, n: number): void {
  if (f.error) return;
  reserve(f, n);
  f.buf.fill(0, f.len, f.len + n);
  f.len += n;
  account(f, n);
}

/** Latin-1 bytes of `s`: every character must be a byte (QEMU strings are C byte strings). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) assert(false, `string ${JSON.stringify(s)} has a character that is not a byte`);
    out[i] = c;
  }
  return out;
}

/** The string whose characters are the bytes of `b` (lossless for any bytes). */
export function latin1String(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** u8 length then the bytes (at most 255). @qemu qemu_put_counted_string */
export function qemuPutCountedString(f: QEMUFileWriter, s: string): void {
  assert(s.length <= 255, `counted string of ${s.length} bytes (max 255): ${s.slice(0, 40)}...`);
  qemuPutByte(f, s.length);
  qemuPutBuffer(f, latin1Bytes(s));
}

/** All bytes written so far, as one array (a writer without a sink; joins its segments once). */
export function qemuFileGetBuffer(f: QEMUFileWriter): Uint8Array {
  assert(f.sink === null, 'qemuFileGetBuffer: this writer hands its bytes to a sink');
  if (f.segments.length > 0) {
    const all = new Uint8Array(f.transferred);
    let o = 0;
    for (const s of f.segments) {
      all.set(s, o);
      o += s.length;
    }
    all.set(f.buf.subarray(0, f.len), o);
    f.segments = [];
    f.buf = all;
    f.len = all.length;
  }
  return f.buf.subarray(0, f.len);
}

/**
 * All bytes written so far as the writer holds them, in pieces (no copy; a writer without a sink).
 */
export function qemuFileGetChunks(f: QEMUFileWriter): Uint8Array[] {
  assert(f.sink === null, 'qemuFileGetChunks: this writer hands its bytes to a sink');
  return f.len > 0 ? [...f.segments, f.buf.subarray(0, f.len)] : [...f.segments];
}

/** Allow `bytes` more bytes this period (0: unlimited). @qemu qemu_file_set_rate_limit */
export function qemuFileSetRateLimit(f: QEMUFileWriter, bytes: number): void {
  assert(Number.isSafeInteger(bytes) && bytes >= 0, `bad rate limit ${bytes}`);
  f.rateLimitMax = bytes;
}

/** Start a new rate-limit period. @qemu qemu_file_reset_rate_limit */
export function qemuFileResetRateLimit(f: QEMUFileWriter): void {
  f.rateLimitUsed = 0;
}

/**
 * Whether the writer must stop for now: an error, or the period's budget spent.
 * @qemu qemu_file_rate_limit
 */
export function qemuFileRateLimit(f: QEMUFileWriter): boolean {
  if (f.error || f.throttled) return true;
  return f.rateLimitMax > 0 && f.rateLimitUsed > f.rateLimitMax;
}

/** Flush and report the sticky error (0 if none). @qemu qemu_fclose */
export function qemuFclose(f: QEMUFileWriter): number {
  qemuFflush(f);
  return f.error;
}
