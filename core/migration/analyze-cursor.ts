// The byte cursor of the stream walker (analyze.ts): big-endian reads over a complete buffer
// that throw WalkError instead of reading past its end, so a corrupt stream ends the walk with
// a message rather than an exception escaping or a read outside the input.
// Invariant: `p` never exceeds the buffer's length.

import { pyDecode } from './analyze-format.ts';

export class WalkError extends Error {
  override name = 'WalkError';
}

/** A read-only cursor that throws WalkError past the end. */
export interface Cursor {
  b: Uint8Array;
  p: number;
}

export function avail(c: Cursor, n: number): void {
  if (!(n >= 0 && c.p + n <= c.b.length)) {
    throw new WalkError(`unexpected end of stream at 0x${c.p.toString(16)} (needed ${n} bytes)`);
  }
}
export function u8(c: Cursor): number {
  avail(c, 1);
  return c.b[c.p++]!;
}
export function u16(c: Cursor): number {
  avail(c, 2);
  const v = (c.b[c.p]! << 8) | c.b[c.p + 1]!;
  c.p += 2;
  return v;
}
export function u32(c: Cursor): number {
  avail(c, 4);
  const b = c.b;
  const p = c.p;
  c.p += 4;
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

}
export function u64(c: Cursor): bigint {
  const hi = u32(c);
  return (BigInt(hi) << 32n) | BigInt(u32(c));
}
export function bytes(c: Cursor, n: number): Uint8Array {
  avail(c, n);
  const v = c.b.subarray(c.p, c.p + n);
  c.p += n;
  return v;
}
export function counted(c: Cursor): string {
  return pyDecode(bytes(c, u8(c)));
}
