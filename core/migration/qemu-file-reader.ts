// QEMUFile, reading side (migration/qemu-file.c qemu_get_*, qemu_peek_*): consumes chunks that
// may arrive over time. Reads behave as QEMU's once the stream is final: past the end they
// yield zeros and set the sticky error -EIO. While more data may come, a read that cannot be
// satisfied throws QEMU_FILE_NEED_MORE instead, and the loader restores the mark it took before
// the record and retries when the next chunk arrives.
// Invariants: errors are sticky; `pos` counts every byte consumed; chunks are never copied.

import { assert } from '../util/index.ts';
import { EIO } from './errors.ts';
import { latin1String, qemuFileSetError } from './qemu-file.ts';

/** Thrown (as this one object) by a read on a non-final reader that lacks bytes. */
export class QEMUFileNeedMore {
  readonly needMore = true;
}
export const QEMU_FILE_NEED_MORE = new QEMUFileNeedMore();

/** A stream being read, fed in chunks. Runtime I/O state, not VM state. */
export interface QEMUFileReader {
  /** Received chunks not yet released; `chunks[0]` starts at absolute offset `base`. */
  chunks: Uint8Array[];
  base: number;
  /** Cursor: chunk index and offset in it; `pos` is the absolute offset (qemu_ftell). */
  ci: number;
  co: number;
  pos: number;
  /** Absolute offset of the end of the data received. */
  end: number;
  /** No more data will arrive: short reads now fail with -EIO instead of asking for more. */
  final: boolean;
  /** 0 or a negative errno; sticky. */
  error: number;
}

/** A reader over `bytes` (not copied: do not change them). `final` false: more may be pushed. */
export function qemuFileReaderCreate(
  bytes: Uint8Array | null = null, final = true,
): QEMUFileReader {
  const f: QEMUFileReader = {
    chunks: [], base: 0, ci: 0, co: 0, pos: 0, end: 0, final: false, error: 0,
  };

  if (bytes) qemuFilePush(f, bytes);
  f.final = final;
  return f;
}

/** Append received bytes. The reader keeps a view, so the caller must not reuse `chunk`. */
export function qemuFilePush(f: QEMUFileReader, chunk: Uint8Array): void {
  assert(!f.final, 'qemuFilePush: the stream already ended');
  if (chunk.length === 0) return;
  f.chunks.push(chunk);
  f.end += chunk.length;
}

/** The peer closed: no more bytes will come. */
export function qemuFileSetEof(f: QEMUFileReader): void {
  f.final = true;
}

/** Bytes available from the cursor. */
export function qemuFileAvail(f: QEMUFileReader): number {
  return f.end - f.pos;
}

/**
 * Ensure `n` bytes are available: true if so; otherwise throw QEMU_FILE_NEED_MORE (stream not
 * final) or set -EIO and return false (final: the caller reads what is there, then zeros).
 */
function need(f: QEMUFileReader, n: number): boolean {
  if (f.end - f.pos >= n) return true;
  if (!f.final) throw QEMU_FILE_NEED_MORE;
  qemuFileSetError(f, -EIO);
  return false;
}

/** Read one byte known to be available. */
function take(f: QEMUFileReader): number {
  let c = f.chunks[f.ci]!;
  while (f.co >= c.length) {
    f.ci++;
    f.co = 0;
    c = f.chunks[f.ci]!;
  }
  f.pos++;
  return c[f.co++]!;
}

/** @qemu qemu_get_byte (0 past the end) */
export function qemuGetByte(f: QEMUFileReader): number {
  if (f.end - f.pos < 1 && !need(f, 1)) return 0;
  return take(f);
}

function getN(f: QEMUFileReader, n: number): number {
  let v = 0;
  if (f.end - f.pos >= n || need(f, n)) {
    const c = f.chunks[f.ci]!;
    if (f.co + n <= c.length) {
      for (let i = 0; i < n; i++) v = v * 256 + c[f.co + i]!;
      f.co += n;
      f.pos += n;
      return v;
    }
  }
  for (let i = 0; i < n; i++) v = v * 256 + (f.pos < f.end ? take(f) : 0);
  return v;
}

/** @qemu qemu_get_be16 */
export function qemuGetBe16(f: QEMUFileReader): number {
  return getN(f, 2);
}

/** @qemu qemu_get_be32 (as an unsigned number) */
export function qemuGetBe32(f: QEMUFileReader): number {
  return getN(f, 4);
}

/** @qemu qemu_get_be64 (as an unsigned bigint) */
export function qemuGetBe64(f: QEMUFileReader): bigint {
  const hi = getN(f, 4);
  const lo = getN(f, 4);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Read up to `n` bytes into a fresh array; shorter only when a final stream ends early (and
 * then the error is -EIO). @qemu qemu_get_buffer
 */
export function qemuGetBuffer(f: QEMUFileReader, n: number): Uint8Array {
  const got = need(f, n) ? n : f.end - f.pos;
  const out = new Uint8Array(got);
  copyOut(f, out, got);
  return out;
}

/**
 * Like qemuGetBuffer, but returns a view into the received chunk when the bytes lie in one
 * (no copy). The view stays valid as long as the caller keeps it: chunks are never reused.
 */
export function qemuGetBufferView(f: QEMUFileReader, n: number): Uint8Array {
  if (f.end - f.pos >= n) {
    let c = f.chunks[f.ci]!;
    while (f.co >= c.length) {
      f.ci++;
      f.co = 0;
      c = f.chunks[f.ci]!;
    }
    if (f.co + n <= c.length) {
      const v = c.subarray(f.co, f.co + n);
      f.co += n;
      f.pos += n;
      return v;
    }
  }
  return qemuGetBuffer(f, n);
}

/**
 * Copy the next `n` bytes into `out` at `at` when they have all arrived, and return true; else
 * consume nothing and return false (the caller then reads with qemuGetBuffer, which asks for
 * more or fails as QEMU would).
 */
export function qemuGetBufferInto(f: QEMUFileReader, out: Uint8Array, at: number, n: number): boolean {
  if (f.end - f.pos < n) return false;
  copyOut(f, out, n, at);
  return true;
}

/** Copy the next `n` bytes (all arrived) into `out` at `at`, and consume them. */
function copyOut(f: QEMUFileReader, out: Uint8Array, n: number, at = 0): void {
  let done = 0;
  while (done < n) {
    const c = f.chunks[f.ci]!;
    if (f.co >= c.length) {
      f.ci++;
      f.co = 0;
      continue;
    }
    const k = Math.min(n - done, c.length - f.co);
    out.set(k === c.length ? c : c.subarray(f.co, f.co + k), at + done);
    f.co += k;
    done += k;
  }
  f.pos += n;
}

/** Consume `n` bytes without keeping them (as many as there are, at the end of a final stream). */
export function qemuGetSkip(f: QEMUFileReader, n: number): void {
  const got = need(f, n) ? n : f.end - f.pos;
  qemuFileRewind(f, f.pos + got);
}

/**
 * A u8 length then that many bytes, as a latin-1 string; null when the length is 0 or the
 * stream ended inside it. @qemu qemu_get_counted_string (returns 0 then)
 */
export function qemuGetCountedString(f: QEMUFileReader): string | null {
  const len = qemuGetByte(f);
  const b = qemuGetBuffer(f, len);
  return len !== 0 && b.length === len ? latin1String(b) : null;
}

/**
 * The byte `offset` bytes ahead, not consumed (0 past the end of a final stream).
 * @qemu qemu_peek_byte
 */
export function qemuPeekByte(f: QEMUFileReader, offset: number): number {
  if (!need(f, offset + 1)) return 0;
  const save = { ci: f.ci, co: f.co, pos: f.pos };
  qemuFileRewind(f, f.pos + offset);
  const v = take(f);
  f.ci = save.ci;
  f.co = save.co;
  f.pos = save.pos;
  return v;
}

/**
 * Up to `size` bytes starting `offset` bytes ahead, not consumed (fewer at the end of a final
 * stream). @qemu qemu_peek_buffer
 */
export function qemuPeekBuffer(f: QEMUFileReader, size: number, offset: number): Uint8Array {
  const have = need(f, offset + size) ? size : Math.max(0, f.end - f.pos - offset);
  const save = { ci: f.ci, co: f.co, pos: f.pos };
  qemuFileRewind(f, f.pos + offset);
  const out = new Uint8Array(have);
  copyOut(f, out, have);
  f.ci = save.ci;
  f.co = save.co;
  f.pos = save.pos;
  return out;
}

/** Skip bytes already peeked: only what is available. @qemu qemu_file_skip */
export function qemuFileSkip(f: QEMUFileReader, n: number): void {
  qemuFileRewind(f, Math.min(f.end, f.pos + n));
}

/** Move the cursor to absolute offset `pos` (between the oldest kept byte and the end). */
export function qemuFileRewind(f: QEMUFileReader, pos: number): void {
  assert(pos >= f.base && pos <= f.end, `rewind to ${pos} outside [${f.base}, ${f.end}]`);
  let ci = 0;
  let off = pos - f.base;
  while (ci < f.chunks.length && off >= f.chunks[ci]!.length && ci < f.chunks.length - 1) {
    off -= f.chunks[ci]!.length;
    ci++;
  }
  f.ci = ci;
  f.co = off;
  f.pos = pos;
}

/** A cursor position to return to (valid until the next qemuFileRelease). */
export interface QEMUFileMark {
  ci: number;
  co: number;
  pos: number;
}

/** Remember the cursor, to retry a record from here when it turns out incomplete. */
export function qemuFileMark(f: QEMUFileReader): QEMUFileMark {
  return { ci: f.ci, co: f.co, pos: f.pos };
}

/** Return to a mark taken since the last release (O(1), unlike qemuFileRewind). */
export function qemuFileRestore(f: QEMUFileReader, m: QEMUFileMark): void {
  assert(m.pos >= f.base && m.pos <= f.end, `mark at ${m.pos} no longer held`);
  f.ci = m.ci;
  f.co = m.co;
  f.pos = m.pos;
}

/** Forget chunks entirely before the cursor: nothing before it can be rewound to any more. */
export function qemuFileRelease(f: QEMUFileReader): void {
  let drop = 0;
  while (drop < f.ci) {
    f.base += f.chunks[drop]!.length;
    drop++;
  }
  if (drop > 0) {
    f.chunks.splice(0, drop);
    f.ci -= drop;
  }
}
