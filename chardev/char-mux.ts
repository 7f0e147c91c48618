// The mux chardev (chardev/char-mux.c, 7.2): up to MAX_MUX frontends share one backend. Input
// goes to the focused frontend, through a 32-byte buffer per frontend, after the escape
// character (Ctrl-A by default) handling; output from any frontend goes straight through (with
// optional REALTIME timestamps); backend events reach every frontend, events raised on the mux
// reach only the focused one. OPENED is held back between suspend_mux_open and
// resume_mux_open (machine init), then sent to every frontend (mux-escape.ts has the escapes).
// Invariants: 0 <= muxCnt <= MAX_MUX; tags are never reused (7.2 counts, it has no bitmap);
// prod[i] - cons[i] <= MUX_BUFFER_SIZE.

import {
  type CharBackend, type Chardev, type ChardevDriver, type QEMUChrEvent, CHR_EVENT_MUX_IN,
  CHR_EVENT_MUX_OUT, CHR_EVENT_NAMES, CHR_EVENT_OPENED, charBackendCreate, charState, chardevCreate,
  qemuChrFeDeinit, qemuChrFeInit, qemuChrFeSetHandlersFull, qemuChrFind, qemuChrWrite,
  qemuChrWriteAll,
} from '../core/char/index.ts';
import {
  type LoopMachine, QEMU_CLOCK_REALTIME, SCALE_MS, qemuClockGetNs,
} from '../core/loop/index.ts';
import { TRACE_DEVICES, traceEnter, traceEvent, traceExit } from '../core/trace/index.ts';
import { assert } from '../core/util/index.ts';
import type { OpenResult } from './char-driver.ts';
import { muxProcByte } from './mux-escape.ts';

export const MAX_MUX = 4;
export const MUX_BUFFER_SIZE = 32;
export const MUX_BUFFER_MASK = MUX_BUFFER_SIZE - 1;

/** @qemu chardev/chardev-internal.h MuxChardev (the plain part) */
export interface MuxState {
  name: 'mux';
  /** The focused frontend's tag, or -1. */
  focus: number;
  muxCnt: number;
  termGotEscape: boolean;
  /** Per-frontend input rings of MUX_BUFFER_SIZE bytes. */
  buffer: number[][];
  prod: number[];
  cons: number[];
  timestamps: boolean;
  /** REALTIME ms of the first stamped byte, or -1. */
  timestampsStart: number;
  linestart: boolean;
  /** Ctrl-A x was typed: QEMU 7.2 has exited; detvm ignores further input. */
  terminated: boolean;
}

export interface MuxIo {
  backends: (CharBackend | null)[];
  /** The mux as the frontend of the real backend. @qemu MuxChardev.chr */
  chr: CharBackend;
}

export function muxState(chr: Chardev): MuxState {
  assert(chr.driver === muxDriver, `chardev '${chr.label}' is not a mux`);
  return chr.state as MuxState;
}

export function muxIo(chr: Chardev): MuxIo {
  assert(chr.driver === muxDriver, `chardev '${chr.label}' is not a mux`);
  return chr.io as MuxIo;
}

/** Whether `chr` is a mux. @qemu CHARDEV_IS_MUX */
export function chardevIsMux(chr: Chardev): boolean {
  return chr.driver === muxDriver;
}

/** Whether a frontend has handlers and can take a byte now. */
function feCanRead(be: CharBackend): boolean {
  return be.chrCanRead !== null && be.chrRead !== null && be.chrCanRead(be.opaque) > 0;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Output, stamped "[hh:mm:ss.mmm] " at line starts when timestamps are on. @qemu mux_chr_write */
function muxChrWrite(chr: Chardev, buf: Uint8Array): number {
  const d = muxState(chr);
  const fe = muxIo(chr).chr;
  const real = fe.chr;
  if (!real) return 0;
  if (!d.timestamps) {
    const ret = qemuChrWrite(real, buf, false);
    chr.errno = real.errno;
    return ret;
  }
  let ret = 0;
  for (let i = 0; i < buf.length; i++) {
    if (d.linestart) {
      let ti = Math.floor(qemuClockGetNs(chr.m.clocks, QEMU_CLOCK_REALTIME) / SCALE_MS);
      if (d.timestampsStart === -1) d.timestampsStart = ti;
      ti -= d.timestampsStart;
      const secs = Math.floor(ti / 1000);
      const h = pad(Math.floor(secs / 3600), 2);
      const hms = `${h}:${pad(Math.floor(secs / 60) % 60, 2)}:${pad(secs % 60, 2)}`;
      const stamp = `[${hms}.${pad(ti % 1000, 3)}] `;
      qemuChrWrite(real, new TextEncoder().encode(stamp), true);
      d.linestart = false;
    }
    ret += qemuChrWrite(real, buf.subarray(i, i + 1), false);
    if (buf[i] === 0x0a) d.linestart = true;
  }
  chr.errno = real.errno;
  return ret;
}

/** @qemu chardev/char-mux.c mux_chr_send_event */
export function muxChrSendEvent(chr: Chardev, muxNr: number, event: QEMUChrEvent): void {
  const be = muxIo(chr).backends[muxNr];
  if (!be || !be.chrEvent) return;
  const args = { chardev: chr.label, tag: muxNr, event: CHR_EVENT_NAMES[event] };
  traceEvent(chr.m, TRACE_DEVICES, 'mux_chr_send_event', args);
  be.chrEvent(be.opaque, event);
}

/** Events raised on the mux itself go to the focused frontend only. @qemu mux_chr_be_event */
function muxChrBeEvent(chr: Chardev, event: QEMUChrEvent): void {
  const d = muxState(chr);
  if (d.focus !== -1) muxChrSendEvent(chr, d.focus, event);
}

/** Drain the focused frontend's buffer while it reads. @qemu mux_chr_accept_input */
function muxChrAcceptInput(chr: Chardev): void {
  const d = muxState(chr);
  const m = d.focus;
  if (m < 0) return;
  const be = muxIo(chr).backends[m];
  while (be && d.prod[m] !== d.cons[m] && feCanRead(be)) {
    const b = d.buffer[m]![d.cons[m]!++ & MUX_BUFFER_MASK]!;
    be.chrRead!(be.opaque, Uint8Array.of(b));
  }
}

/**
 * 1 while the focused buffer has room, else the focused frontend's can_read. @qemu mux_chr_can_read
 */
function muxChrCanRead(chr: Chardev): number {
  const d = muxState(chr);
  const m = d.focus;
  if (m < 0 || d.terminated) return 0;
  if (d.prod[m]! - d.cons[m]! < MUX_BUFFER_SIZE) return 1;
  const be = muxIo(chr).backends[m];
  if (be && be.chrCanRead) return be.chrCanRead(be.opaque);
  return 0;
}

/** Escapes first, then byte by byte to the focused frontend or its buffer. @qemu mux_chr_read */
function muxChrRead(chr: Chardev, buf: Uint8Array): void {
  const d = muxState(chr);
  const m = d.focus;
  if (m < 0 || d.terminated) return;
  const args = { chardev: chr.label, len: buf.length };
  const opened = traceEnter(chr.m, TRACE_DEVICES, 'mux_chr_read', args);
  const be = muxIo(chr).backends[m];
  muxChrAcceptInput(chr);
  for (let i = 0; i < buf.length && !d.terminated; i++) {
    const ch = buf[i]!;
    if (!muxProcByte(chr, d, ch)) continue;
    if (d.prod[m] === d.cons[m] && be && feCanRead(be)) {
      be.chrRead!(be.opaque, buf.subarray(i, i + 1));
    } else {
      d.buffer[m]![d.prod[m]!++ & MUX_BUFFER_MASK] = ch;
    }
  }
  traceExit(chr.m, opened, 'mux_chr_read');
}

/** Every attached frontend, once muxes are open. @qemu mux_chr_send_all_event */
export function muxChrSendAllEvent(chr: Chardev, event: QEMUChrEvent): void {
  const d = muxState(chr);
  if (!charState(chr.m).muxesOpened) return;
  for (let i = 0; i < d.muxCnt; i++) muxChrSendEvent(chr, i, event);
}

/**
 * Give the focus to frontend `focus`: MUX_OUT to the old, MUX_IN to the new. @qemu mux_set_focus
 */
export function muxSetFocus(chr: Chardev, focus: number): void {
  const d = muxState(chr);
  const valid = focus >= 0 && focus < d.muxCnt;
  assert(valid, `mux '${chr.label}': focus ${focus} of ${d.muxCnt} frontends`);
  if (d.focus !== -1) muxChrSendEvent(chr, d.focus, CHR_EVENT_MUX_OUT);
  d.focus = focus;
  chr.be = muxIo(chr).backends[focus] ?? null;
  muxChrSendEvent(chr, focus, CHR_EVENT_MUX_IN);
}

/**
 * Install the mux's handlers on the real backend (no OPENED re-sync). @qemu
 * mux_chr_update_read_handlers
 */
function muxChrUpdateReadHandlers(chr: Chardev): void {
  qemuChrFeSetHandlersFull(
    muxIo(chr).chr, () => muxChrCanRead(chr), (_o, buf) => muxChrRead(chr, buf),
    (_o, event) => muxChrSendAllEvent(chr, event), null, chr, true, false,
  );
}

/** @qemu chardev/char-fe.c qemu_chr_fe_init (mux branch, 7.2) */
function muxAttach(chr: Chardev, be: CharBackend): string | null {
  const d = muxState(chr);
  if (d.muxCnt >= MAX_MUX) return `Device '${chr.label}' is in use`;
  muxIo(chr).backends[d.muxCnt] = be;
  be.tag = d.muxCnt++;
  return null;
}

/** @qemu chardev/char-mux.c char_mux_finalize */
function charMuxFinalize(chr: Chardev): void {
  const io = muxIo(chr);
  for (const be of io.backends) if (be) be.chr = null;
  qemuChrFeDeinit(io.chr, false);
}

/** @qemu chardev/char-mux.c char_mux_class_init */
export const muxDriver: ChardevDriver = {
  type: 'mux',
  write: muxChrWrite,
  acceptInput: muxChrAcceptInput,
  addWatch: (chr, cond, fn) => {
    const real = muxIo(chr).chr.chr;
    return real && real.driver.addWatch ? real.driver.addWatch(real, cond, fn) : 0;
  },
  beEvent: muxChrBeEvent,
  updateReadHandlers: muxChrUpdateReadHandlers,
  attach: muxAttach,
  detach: (chr, be) => {
    muxIo(chr).backends[be.tag] = null;
  },
  takeFocus: (chr, be) => muxSetFocus(chr, be.tag),
  // 7.2's qemu_chr_is_busy tests mux_cnt >= 0: a mux is always busy.
  isBusy: () => true,
  finalize: charMuxFinalize,
};

/** Create a mux over chardev `base`. @qemu chardev/char-mux.c qemu_chr_open_mux */
export function qemuChrOpenMux(m: LoopMachine, label: string, base: string): OpenResult {
  const drv = qemuChrFind(m, base);
  if (!drv) return { ok: false, error: `mux: base chardev ${base} not found` };
  const state: MuxState = {
    name: 'mux', focus: -1, muxCnt: 0, termGotEscape: false,
    buffer: Array.from({ length: MAX_MUX }, () => new Array<number>(MUX_BUFFER_SIZE).fill(0)),
    prod: [0, 0, 0, 0], cons: [0, 0, 0, 0], timestamps: false, timestampsStart: -1,
    linestart: false,
    terminated: false,
  };
  const chr = chardevCreate(m, label, muxDriver, 'mux', state);
  const io: MuxIo = { backends: [null, null, null, null], chr: charBackendCreate() };
  chr.io = io;
  const err = qemuChrFeInit(io.chr, drv);
  if (err) return { ok: false, error: err.desc };
  // Only open at once if the initial set of muxes has been realized.
  return { ok: true, chr, beOpened: charState(m).muxesOpened };
}

/** Hold OPENED back from muxes until resume_mux_open. @qemu chardev/char-mux.c suspend_mux_open */
export function suspendMuxOpen(m: LoopMachine): void {
  charState(m).muxesOpened = false;
}

/**
 * After machine init: OPENED to every frontend of every mux not yet open, which is then open.
 * @qemu chardev/char-mux.c resume_mux_open / open_muxes
 */
export function resumeMuxOpen(m: LoopMachine): void {
  const s = charState(m);
  s.muxesOpened = true;
  for (const chr of [...s.chardevs.values()]) {
    if (chr.beOpen || !chardevIsMux(chr)) continue;
    muxChrSendAllEvent(chr, CHR_EVENT_OPENED);
    chr.beOpen = true;
  }
}

/** Write on the mux itself (the escape handler's messages). @qemu qemu_chr_write_all */
export function muxWriteAll(chr: Chardev, text: string): void {
  qemuChrWriteAll(chr, new TextEncoder().encode(text));
}
