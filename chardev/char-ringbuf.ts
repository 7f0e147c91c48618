// The ring buffer chardev (chardev/char-ringbuf.c): output-only; writes land in a power-of-two
// ring where the oldest bytes are overwritten; it never produces input. `memory` is the same
// driver under its old name. ringbuf_write / ringbuf_read (QMP and HMP) read and write the
// ring directly, not through a frontend. Invariants: 0 <= prod - cons <= size; prod and cons
// only grow (they are byte counters, indexed modulo size).

import {
  type Chardev, type ChardevDriver, chardevCreate, qemuChrFind,
} from '../core/char/index.ts';
import type { LoopMachine } from '../core/loop/index.ts';
import type { OpenResult } from './char-driver.ts';

export const RINGBUF_DEFAULT_SIZE = 65536;

/** @qemu chardev/char-ringbuf.c RingBufChardev */
export interface RingBufState {
  name: 'ringbuf';
  size: number;
  prod: number;
  cons: number;
  cbuf: Uint8Array;
}

export type RingbufResult<T> = { ok: true; value: T } | { ok: false; error: string };

function rbState(chr: Chardev): RingBufState {
  return chr.state as RingBufState;
}

/** @qemu chardev/char-ringbuf.c ringbuf_count */
export function ringbufCount(chr: Chardev): number {
  const d = rbState(chr);
  return d.prod - d.cons;
}

/** Store every byte, overwriting the oldest when full. @qemu ringbuf_chr_write */
export function ringbufChrWrite(chr: Chardev, buf: Uint8Array): number {
  const d = rbState(chr);
  const mask = d.size - 1;
  for (const b of buf) {
    d.cbuf[d.prod++ & mask] = b;
    if (d.prod - d.cons > d.size) d.cons = d.prod - d.size;
  }
  return buf.length;
}

/** Consume up to `len` bytes. @qemu chardev/char-ringbuf.c ringbuf_chr_read */
export function ringbufChrRead(chr: Chardev, len: number): Uint8Array {
  const d = rbState(chr);
  const n = Math.min(len, d.prod - d.cons);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = d.cbuf[d.cons++ & (d.size - 1)]!;
  return out;
}

export const ringbufDriver: ChardevDriver = { type: 'ringbuf', write: ringbufChrWrite };
export const memoryDriver: ChardevDriver = { type: 'memory', write: ringbufChrWrite };

/** Whether `chr` is a ring buffer (ringbuf or memory). @qemu CHARDEV_IS_RINGBUF */
export function chardevIsRingbuf(chr: Chardev): boolean {
  return chr.driver === ringbufDriver || chr.driver === memoryDriver;
}

/** @qemu chardev/char-ringbuf.c ringbuf_chr_open */
export function ringbufChrOpen(
  m: LoopMachine, label: string, type: 'ringbuf' | 'memory', size: number | undefined,
): OpenResult {
  const n = size ?? RINGBUF_DEFAULT_SIZE;
  // size_t arithmetic: a negative size (an int that overflowed) is never a power of two.
  if (n <= 0 || (n & (n - 1)) !== 0) {
    return { ok: false, error: 'size of ringbuf chardev must be power of two' };
  }
  const cbuf = new Uint8Array(n);
  const state: RingBufState = { name: 'ringbuf', size: n, prod: 0, cons: 0, cbuf };
  const driver = type === 'ringbuf' ? ringbufDriver : memoryDriver;
  const chr = chardevCreate(m, label, driver, type, state);
  return { ok: true, chr, beOpened: true };
}

function findRingbuf(m: LoopMachine, device: string): RingbufResult<Chardev> {
  const chr = qemuChrFind(m, device);
  if (!chr) return { ok: false, error: `Device '${device}' not found` };
  if (!chardevIsRingbuf(chr)) return { ok: false, error: `${device} is not a ringbuf device` };
  return { ok: true, value: chr };
}

/** Write raw bytes into a ring. @qemu chardev/char-ringbuf.c qmp_ringbuf_write (after decoding) */
export function ringbufWrite(
  m: LoopMachine, device: string, data: Uint8Array,
): RingbufResult<void> {
  const r = findRingbuf(m, device);
  if (!r.ok) return r;
  ringbufChrWrite(r.value, data);
  return { ok: true, value: undefined };
}

/** Consume up to `size` bytes. @qemu chardev/char-ringbuf.c qmp_ringbuf_read (before encoding) */
export function ringbufRead(
  m: LoopMachine, device: string, size: number,
): RingbufResult<Uint8Array> {
  const r = findRingbuf(m, device);
  if (!r.ok) return r;
  if (size <= 0) return { ok: false, error: 'size must be greater than zero' };
  return { ok: true, value: ringbufChrRead(r.value, Math.min(size, ringbufCount(r.value))) };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALID = /^[A-Za-z0-9+/=\n]*$/;

/** @qemu glib g_base64_encode (no line breaks) */
export function gBase64Encode(data: Uint8Array): string {
  let out = '';
  for (let i = 0; i < data.length; i += 3) {
    const a = data[i]!;
    const b = data[i + 1];
    const c = data[i + 2];
    const v = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += B64[v >> 18]! + B64[(v >> 12) & 63]!;
    out += b === undefined ? '=' : B64[(v >> 6) & 63]!;
    out += c === undefined ? '=' : B64[v & 63]!;
  }
  return out;
}

/**
 * Decode base64 as QEMU does: reject characters outside the alphabet, '=' and '\n', then GLib's
 * lenient decoder ('=' counts as a zero digit that suppresses output; a trailing partial
 * quantum is dropped). @qemu util/base64.c qbase64_decode + glib g_base64_decode
 */
export function qbase64Decode(input: string): RingbufResult<Uint8Array> {
  if (input.includes('\0')) {
    return { ok: false, error: 'Base64 data contains embedded NUL characters' };
  }
  if (!B64_VALID.test(input)) {
    return { ok: false, error: 'Base64 data contains invalid characters' };
  }
  const out: number[] = [];
  let v = 0;
  let i = 0;
  let last0 = '';
  let last1 = '';
  for (const c of input) {
    if (c === '\n') continue;
    const rank = c === '=' ? 0 : B64.indexOf(c);
    last1 = last0;
    last0 = c;
    v = ((v << 6) | rank) & 0xffffff;
    if (++i === 4) {
      out.push(v >> 16);
      if (last1 !== '=') out.push((v >> 8) & 0xff);
      if (last0 !== '=') out.push(v & 0xff);
      i = 0;
    }
  }
  return { ok: true, value: Uint8Array.from(out) };
}

/** @qemu qapi/char.json DataFormat */
export type DataFormat = 'utf8' | 'base64';

/**
 * QMP ringbuf-write: `data` is base64 or a UTF-8 string (cut at the first NUL, as strlen does).
 * @qemu chardev/char-ringbuf.c qmp_ringbuf_write
 */
export function qmpRingbufWrite(
  m: LoopMachine, device: string, data: string, format: DataFormat = 'utf8',
): RingbufResult<void> {
  const r = findRingbuf(m, device);
  if (!r.ok) return r;
  let bytes: Uint8Array;
  if (format === 'base64') {
    const d = qbase64Decode(data);
    if (!d.ok) return d;
    bytes = d.value;
  } else {
    const nul = data.indexOf('\0');
    bytes = new TextEncoder().encode(nul >= 0 ? data.slice(0, nul) : data);
  }
  ringbufChrWrite(r.value, bytes);
  return { ok: true, value: undefined };
}

/**
 * QMP ringbuf-read: base64, or the raw bytes as a string. QEMU returns the bytes unvalidated
 * (its FIXME); detvm decodes them as UTF-8, so invalid sequences become U+FFFD.
 * @qemu chardev/char-ringbuf.c qmp_ringbuf_read
 */
export function qmpRingbufRead(
  m: LoopMachine, device: string, size: number, format: DataFormat = 'utf8',
): RingbufResult<string> {
  const r = ringbufRead(m, device, size);
  if (!r.ok) return r;
  if (format === 'base64') return { ok: true, value: gBase64Encode(r.value) };
  const nul = r.value.indexOf(0);
  const text = new TextDecoder().decode(nul >= 0 ? r.value.subarray(0, nul) : r.value);
  return { ok: true, value: text };
}

/**
 * What HMP ringbuf_read prints for the bytes read: up to the first NUL, '\\' doubled, control
 * characters other than \n and \t (and DEL) as \uXXXX, then "\n". @qemu hmp_ringbuf_read
 */
export function hmpRingbufReadFormat(data: Uint8Array): string {
  let out = '';
  for (const ch of data) {
    if (ch === 0) break;
    if (ch === 0x5c) out += '\\\\';
    else if ((ch < 0x20 && ch !== 0x0a && ch !== 0x09) || ch === 0x7f) {
      out += `\\u${ch.toString(16).toUpperCase().padStart(4, '0')}`;
    }
    else out += String.fromCharCode(ch);
  }
  return `${out}\n`;
}
