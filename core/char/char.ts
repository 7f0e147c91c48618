// The Chardev contract (chardev/char.c, include/chardev/char.h): a Chardev (backend) serves at
// most one CharBackend (frontend) unless it is a mux. Frontends call qemuChrFe* (char-fe.ts);
// backends call qemuChrBe* (here). qemuChrBeWrite is the one place where input bytes enter a
// frontend (the replay boundary). Invariants: chr.be is the attached frontend (the focused one
// for a mux); chr.beOpen follows OPENED/CLOSED events without de-duplication, as QEMU;
// chr.errno is meaningful only right after a write returned -1.

import { assert } from '../util/index.ts';
import type { LoopMachine, VirtualFd } from '../loop/index.ts';
import { TRACE_DEVICES, traceEvent } from '../trace/index.ts';
import type { IoWatchPoll } from './char-io.ts';

export const CHR_EVENT_BREAK = 0;
export const CHR_EVENT_OPENED = 1;
export const CHR_EVENT_MUX_IN = 2;
export const CHR_EVENT_MUX_OUT = 3;
export const CHR_EVENT_CLOSED = 4;
export type QEMUChrEvent = 0 | 1 | 2 | 3 | 4;
export const CHR_EVENT_NAMES = ['BREAK', 'OPENED', 'MUX_IN', 'MUX_OUT', 'CLOSED'] as const;

/** Bytes read from a backend per dispatch at most. @qemu include/chardev/char.h CHR_READ_BUF_LEN */
export const CHR_READ_BUF_LEN = 4096;

/** errno values a write can leave in chr.errno (Linux numbering). */
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EPIPE = 32;

export type ChrCanReadFn = (opaque: unknown) => number;
export type ChrReadFn = (opaque: unknown, buf: Uint8Array) => void;
export type ChrEventFn = (opaque: unknown, event: QEMUChrEvent) => void;
export type ChrBeChangeFn = (opaque: unknown) => number;
/** An output watch callback, given the conditions that hold; return false to remove the watch. */
export type ChrWatchFn = (cond: number) => boolean;

/** The frontend side. @qemu include/chardev/char-fe.h CharBackend */
export interface CharBackend {
  chr: Chardev | null;
  chrCanRead: ChrCanReadFn | null;
  chrRead: ChrReadFn | null;
  chrEvent: ChrEventFn | null;
  chrBeChange: ChrBeChangeFn | null;
  opaque: unknown;
  /** Index among a mux's frontends (0 when not on a mux). */
  tag: number;
  feOpen: boolean;
}

/**
 * What a backend driver implements (ChardevClass). Every hook is optional except write.
 * `write` returns the bytes accepted (possibly short, 0 included) or -1 with `chr.errno` set
 * (EAGAIN: try again when writable; anything else: an error).
 */
export interface ChardevDriver {
  /** The driver name as in `-chardev TYPE` and query-chardev-backends ('socket', 'ringbuf'). */
  type: string;
  write(chr: Chardev, buf: Uint8Array): number;
  /** Re-create read watches after the frontend handlers changed. @qemu chr_update_read_handler */
  updateReadHandlers?(chr: Chardev): void;
  /** The frontend changed its can_read from 0 to > 0. */
  acceptInput?(chr: Chardev): void;
  /** An output-ready watch; returns a tag > 0, or 0 if unsupported. */
  addWatch?(chr: Chardev, cond: number, fn: ChrWatchFn): number;
  setFeOpen?(chr: Chardev, open: boolean): void;
  /** @qemu chr_set_echo */
  setEcho?(chr: Chardev, echo: boolean): void;
  /** Drop the current connection (socket). @qemu chr_disconnect */
  disconnect?(chr: Chardev): void;
  /** Deliver a backend event (default: to the single frontend). Mux overrides. */
  beEvent?(chr: Chardev, event: QEMUChrEvent): void;
  /** Attach a frontend (default: single frontend; mux: up to 4). Returns an error text or null. */
  attach?(chr: Chardev, be: CharBackend): string | null;
  detach?(chr: Chardev, be: CharBackend): void;
  /** The frontend installed handlers and wants focus (mux only). */
  takeFocus?(chr: Chardev, be: CharBackend): void;
  /** Whether a frontend holds the chardev (chardev-remove refuses). Default: chr.be !== null. */
  isBusy?(chr: Chardev): boolean;
  /** Close host resources (chardev-remove, machine teardown). */
  finalize?(chr: Chardev): void;
}

/** A character device backend. @qemu include/chardev/char.h Chardev */
export interface Chardev {
  m: LoopMachine;
  label: string;
  /** What info chardev / query-chardev show (the socket's connected/disconnected forms...). */
  filename: string;
  driver: ChardevDriver;
  /** The attached frontend (for a mux: the focused one). */
  be: CharBackend | null;
  beOpen: boolean;
  /** Driver state: plain data. */
  state: unknown;
  /** Driver wiring (sources, timers, host handles): never saved, rebuilt by the driver. */
  io: unknown;
  /** Whether the chardev carries replayable input (QEMU_CHAR_FEATURE_REPLAY). */
  replay: boolean;
  /** Observers of bytes entering through qemuChrBeWrite (the record log, tests). */
  inputHooks: ((chr: Chardev, buf: Uint8Array) => void)[];
  /** errno of the last write that returned -1 (EAGAIN, EIO...), like C's errno. */
  errno: number;
  /** The read watch of an fd-based chardev. @qemu Chardev.gsource */
  gsource: IoWatchPoll | null;
  /** logfile= copy of the output, or null. @qemu Chardev.logfd */
  logfd: VirtualFd | null;
}

/** Create a chardev record; drivers fill `state`, `io` and `filename`. */
export function chardevCreate(
  m: LoopMachine, label: string, driver: ChardevDriver, filename: string, state: unknown = null,
): Chardev {
  return {
    m, label, filename, driver, be: null, beOpen: false, state, io: null, replay: false,
    inputHooks: [], errno: 0, gsource: null, logfd: null,
  };
}

export function charBackendCreate(): CharBackend {
  return {
    chr: null, chrCanRead: null, chrRead: null, chrEvent: null, chrBeChange: null, opaque: null,
    tag: 0, feOpen: false,
  };
}

/** A typed operating error for chardev operations (QEMU's error text). */
export interface ChrError {
  desc: string;
}

/** Best-effort copy of written bytes to logfile=. @qemu chardev/char.c qemu_chr_write_log */
function qemuChrWriteLog(chr: Chardev, buf: Uint8Array): void {
  const fd = chr.logfd;
  if (!fd || fd.closed || buf.length === 0) return;
  fd.write(buf);
}

/**
 * Write through the driver: one attempt, or (writeAll) repeated attempts while progress is made.
 * Unlike QEMU, which sleeps and retries on EAGAIN, detvm never blocks the loop: when a full
 * backend refuses the rest, the bytes written so far are returned. Returns the bytes written,
 * or the driver's negative result when nothing was written.
 * @qemu chardev/char.c qemu_chr_write / qemu_chr_write_buffer
 */
export function qemuChrWrite(chr: Chardev, buf: Uint8Array, writeAll: boolean): number {
  let offset = 0;
  let res = 0;
  for (let i = 0; offset < buf.length; i++) {
    assert(i <= buf.length, `chardev '${chr.label}': write loop made no progress`);
    res = chr.driver.write(chr, offset === 0 ? buf : buf.subarray(offset));
    if (res <= 0) break;
    const left = buf.length - offset;
    assert(res <= left, `chardev '${chr.label}': driver wrote ${res} of ${left} bytes`);
    offset += res;
    if (!writeAll) break;
  }
  if (offset > 0) qemuChrWriteLog(chr, buf.subarray(0, offset));
  else if (res < 0) qemuChrWriteLog(chr, buf);
  return offset > 0 ? offset : res;
}

/** Write everything the backend takes now. @qemu chardev/char.c qemu_chr_write_all */
export function qemuChrWriteAll(chr: Chardev, buf: Uint8Array): number {
  return qemuChrWrite(chr, buf, true);
}

/** How many bytes the frontend takes now. @qemu chardev/char.c qemu_chr_be_can_write */
export function qemuChrBeCanWrite(chr: Chardev): number {
  const be = chr.be;
  if (!be || !be.chrCanRead) return 0;
  return be.chrCanRead(be.opaque);
}

/**
 * Deliver input bytes to the frontend: the replay boundary for chardev input. Input hooks
 * (the record log) see the bytes first. Dropped when no frontend reads.
 * @qemu chardev/char.c qemu_chr_be_write
 */
export function qemuChrBeWrite(chr: Chardev, buf: Uint8Array): void {
  if (buf.length === 0) return;
  for (const h of chr.inputHooks) h(chr, buf);
  traceEvent(chr.m, TRACE_DEVICES, 'qemu_chr_be_write', { chardev: chr.label, len: buf.length });
  const be = chr.be;
  if (!be || !be.chrRead) return;
  be.chrRead(be.opaque, buf);
}

/** Signal an event to the frontend(s). @qemu chardev/char.c qemu_chr_be_event */
export function qemuChrBeEvent(chr: Chardev, event: QEMUChrEvent): void {
  if (event === CHR_EVENT_OPENED) chr.beOpen = true;
  else if (event === CHR_EVENT_CLOSED) chr.beOpen = false;
  const name = CHR_EVENT_NAMES[event];
  traceEvent(chr.m, TRACE_DEVICES, 'qemu_chr_be_event', { chardev: chr.label, event: name });
  if (chr.driver.beEvent) {
    chr.driver.beEvent(chr, event);
    return;
  }
  const be = chr.be;
  if (!be || !be.chrEvent) return;
  be.chrEvent(be.opaque, event);
}

/**
 * Re-create the backend's read watch for the current handlers. @qemu
 * qemu_chr_be_update_read_handlers
 */
export function qemuChrBeUpdateReadHandlers(chr: Chardev): void {
  chr.driver.updateReadHandlers?.(chr);
}

/** Assert helper for drivers: the state object has the expected driver type. */
export function chardevState<T>(chr: Chardev, type: string): T {
  assert(chr.driver.type === type, `chardev '${chr.label}' is a ${chr.driver.type}, not a ${type}`);
  return chr.state as T;
}

/** Assert helper for drivers: the wiring object of a chardev of driver `type`. */
export function chardevWiring<T>(chr: Chardev, type: string): T {
  assert(chr.driver.type === type, `chardev '${chr.label}' is a ${chr.driver.type}, not a ${type}`);
  assert(chr.io !== null, `chardev '${chr.label}' has no wiring (finalized?)`);
  return chr.io as T;
}
