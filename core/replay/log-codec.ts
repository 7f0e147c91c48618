// Byte-level encoding of the record/replay log (FORMAT.md): a growable byte writer and a cursor
// reader with unsigned LEB128 varints (up to 2^53 - 1), zigzag varints for signed values,
// big-endian u16/u32, and length-prefixed byte strings. Invariants: the writer never loses bytes
// it accepted; the reader throws LogCorruptError naming the byte offset instead of reading past
// the end or accepting an over-long varint.

/** A varint of a safe integer needs at most 8 bytes (7 bits each, 53 bits). */
const VARINT_MAX_BYTES = 8;

/** The log's bytes do not decode: truncated, or a field out of range. */
export class LogCorruptError extends Error {
  override name = 'LogCorruptError';
  constructor(readonly offset: number, what: string, readonly atEnd = false) {
    super(`replay log is corrupted at byte ${offset}: ${what}`);
  }
}

/** Bytes being written; `len` of `buf` are used. */
export interface ByteWriter {
  buf: Uint8Array;
  len: number;
}

export function byteWriterCreate(capacity = 4096): ByteWriter {
  return { buf: new Uint8Array(capacity), len: 0 };
}

function reserve(w: ByteWriter, n: number): void {
  if (w.len + n <= w.buf.length) return;
  let cap = w.buf.length * 2;
  while (cap < w.len + n) cap *= 2;
  const next = new Uint8Array(cap);
  next.set(w.buf.subarray(0, w.len));
  w.buf = next;
}

export function putU8(w: ByteWriter, v: number): void {
  reserve(w, 1);
  w.buf[w.len++] = v & 0xff;
}

export function putU16(w: ByteWriter, v: number): void {
  reserve(w, 2);
  w.buf[w.len++] = (v >>> 8) & 0xff;
  w.buf[w.len++] = v & 0xff;
}

export function putU32(w: ByteWriter, v: number): void {
  reserve(w, 4);
  w.buf[w.len++] = (v >>> 24) & 0xff;
  w.buf[w.len++] = (v >>> 16) & 0xff;
  w.buf[w.len++] = (v >>> 8) & 0xff;
  w.buf[w.len++] = v & 0xff;
}

/** Unsigned LEB128 of a non-negative safe integer. */
export function putUvarint(w: ByteWriter, v: number): void {
  if (!(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`log varint ${v} is not a non-negative safe integer`);
  reserve(w, VARINT_MAX_BYTES);
  while (v >= 0x80) {
    w.buf[w.len++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  w.buf[w.len++] = v;
}

/** Zigzag varint of a safe integer whose magnitude is below 2^52. */
export function putSvarint(w: ByteWriter, v: number): void {
  if (!Number.isSafeInteger(v) || Math.abs(v) >= 2 ** 52) throw new RangeError(`log signed varint ${v} is out of range`);
  putUvarint(w, v >= 0 ? v * 2 : -v * 2 - 1);
}

export function putBytes(w: ByteWriter, b: Uint8Array): void {
  putUvarint(w, b.length);
  reserve(w, b.length);
  w.buf.set(b, w.len);
  w.len += b.length;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function putString(w: ByteWriter, s: string): void {
  putBytes(w, encoder.encode(s));
}

/** Take the written bytes out (a copy) and empty the writer. */
export function byteWriterTake(w: ByteWriter): Uint8Array {
  const out = w.buf.slice(0, w.len);
  w.len = 0;
  return out;
}

/** A read position in a log: plain data, so a snapshot can save and restore it. */
export interface ByteCursor {
  pos: number;
}

export function getU8(b: Uint8Array, c: ByteCursor): number {
  if (c.pos >= b.length) throw new LogCorruptError(c.pos, 'unexpected end of the log', true);
  return b[c.pos++]!;
}

export function getU16(b: Uint8Array, c: ByteCursor): number {
  return getU8(b, c) * 0x100 + getU8(b, c);
}

export function getU32(b: Uint8Array, c: ByteCursor): number {
  return getU16(b, c) * 0x10000 + getU16(b, c);
}

export function getUvarint(b: Uint8Array, c: ByteCursor): number {
  const start = c.pos;
  let v = 0;
  let scale = 1;
  for (let i = 0; i < VARINT_MAX_BYTES; i++) {
    const byte = getU8(b, c);
    v += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (!Number.isSafeInteger(v)) throw new LogCorruptError(start, 'a varint exceeds 2^53');
      return v;
    }
    scale *= 0x80;
  }
  throw new LogCorruptError(start, 'a varint is longer than 8 bytes');
}

export function getSvarint(b: Uint8Array, c: ByteCursor): number {
  const z = getUvarint(b, c);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

export function getBytes(b: Uint8Array, c: ByteCursor): Uint8Array {
  const n = getUvarint(b, c);
  if (c.pos + n > b.length) throw new LogCorruptError(c.pos, `a ${n}-byte field runs past the end of the log`, true);
  const out = b.subarray(c.pos, c.pos + n);
  c.pos += n;
  return out;
}

export function getString(b: Uint8Array, c: ByteCursor): string {
  const at = c.pos;
  const bytes = getBytes(b, c);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new LogCorruptError(at, 'a text field is not UTF-8');
  }
}
