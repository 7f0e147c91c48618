// The frontend API (chardev/char-fe.c): what a device or a monitor calls on its CharBackend.
// A frontend attaches with qemuChrFeInit, installs handlers with qemuChrFeSetHandlers (taking
// a mux's focus and seeing OPENED at once if the backend is already open), writes with
// qemuChrFeWrite / qemuChrFeWriteAll, waits for output space with qemuChrFeAddWatch, and
// detaches with qemuChrFeDeinit. Every function is a no-op (returning 0) without a chardev.

import { qemuNotifyEvent } from '../loop/index.ts';
import {
  type CharBackend, type Chardev, type ChrBeChangeFn, type ChrCanReadFn, type ChrError,
  type ChrEventFn, type ChrReadFn, type ChrWatchFn, CHR_EVENT_OPENED, qemuChrBeEvent,
  qemuChrBeUpdateReadHandlers, qemuChrWrite,
} from './char.ts';
import { removeFdInWatch } from './char-io.ts';
import { chardevDestroy, qemuChrWatchRemove } from './char-registry.ts';

/**
 * Attach frontend `be` to `chr`. Fails with QEMU's "Device '%s' is in use" when a non-mux
 * chardev already has a frontend (a mux: when its 4 slots were all handed out).
 * @qemu chardev/char-fe.c qemu_chr_fe_init
 */
export function qemuChrFeInit(be: CharBackend, chr: Chardev): ChrError | null {
  let tag = 0;
  if (chr.driver.attach) {
    const err = chr.driver.attach(chr, be);
    if (err) return { desc: err };
    tag = be.tag;
  } else {
    if (chr.be) return { desc: `Device '${chr.label}' is in use` };
    chr.be = be;
  }
  be.feOpen = false;
  be.tag = tag;
  be.chr = chr;
  return null;
}

/** Tell the backend whether the frontend is open. @qemu chardev/char-fe.c qemu_chr_fe_set_open */
export function qemuChrFeSetOpen(be: CharBackend, open: boolean): void {
  const chr = be.chr;
  if (!chr || be.feOpen === open) return;
  be.feOpen = open;
  chr.driver.setFeOpen?.(chr, open);
}

/** A mux gives its focus to `be`. @qemu chardev/char-fe.c qemu_chr_fe_take_focus */
export function qemuChrFeTakeFocus(be: CharBackend): void {
  const chr = be.chr;
  if (chr) chr.driver.takeFocus?.(chr, be);
}

/**
 * Install (or, with all of canRead/read/event/opaque null, remove) the frontend's handlers.
 * Order as QEMU: store, re-create the backend read watch, set_open, take a mux's focus, then
 * (if `syncState` and the backend is open) deliver OPENED so a late frontend still sees it.
 * @qemu chardev/char-fe.c qemu_chr_fe_set_handlers_full
 */
export function qemuChrFeSetHandlersFull(
  be: CharBackend, canRead: ChrCanReadFn | null, read: ChrReadFn | null, event: ChrEventFn | null,
  beChange: ChrBeChangeFn | null, opaque: unknown, setOpen: boolean, syncState: boolean,
): void {
  const chr = be.chr;
  if (!chr) return;
  const feOpen = !(opaque === null && canRead === null && read === null && event === null);
  if (!feOpen) removeFdInWatch(chr);
  be.chrCanRead = canRead;
  be.chrRead = read;
  be.chrEvent = event;
  be.chrBeChange = beChange;
  be.opaque = opaque;
  qemuChrBeUpdateReadHandlers(chr);
  if (setOpen) qemuChrFeSetOpen(be, feOpen);
  if (feOpen) {
    qemuChrFeTakeFocus(be);
    if (syncState && chr.beOpen) qemuChrBeEvent(chr, CHR_EVENT_OPENED);
  }
}

/**
 * qemuChrFeSetHandlersFull with syncState = true: a frontend that installs handlers on an
 * open backend gets OPENED at once (and takes a mux's focus).
 * @qemu chardev/char-fe.c qemu_chr_fe_set_handlers
 */
export function qemuChrFeSetHandlers(
  be: CharBackend, canRead: ChrCanReadFn | null, read: ChrReadFn | null, event: ChrEventFn | null,
  beChange: ChrBeChangeFn | null, opaque: unknown, setOpen = true,
): void {
  qemuChrFeSetHandlersFull(be, canRead, read, event, beChange, opaque, setOpen, true);
}

/**
 * One write attempt; may be short. Returns the bytes written, 0, or -1 with the reason in
 * `be.chr.errno` (EAGAIN: wait for G_IO_OUT; otherwise an error: the bytes are lost).
 * Without a chardev returns 0. @qemu chardev/char-fe.c qemu_chr_fe_write
 */
export function qemuChrFeWrite(be: CharBackend, buf: Uint8Array): number {
  const chr = be.chr;
  if (!chr) return 0;
  return qemuChrWrite(chr, buf, false);
}

/**
 * Write everything the backend accepts, retrying short writes while progress is made. Unlike
 * QEMU (which sleeps and retries on EAGAIN) detvm never blocks the loop: bytes a full backend
 * refuses are reported as a short count. @qemu chardev/char-fe.c qemu_chr_fe_write_all
 */
export function qemuChrFeWriteAll(be: CharBackend, buf: Uint8Array): number {
  const chr = be.chr;
  if (!chr) return 0;
  return qemuChrWrite(chr, buf, true);
}

const encoder = new TextEncoder();

/** Write `text` (UTF-8) with write_all semantics. @qemu chardev/char-fe.c qemu_chr_fe_printf */
export function qemuChrFePrintf(be: CharBackend, text: string): number {
  return qemuChrFeWriteAll(be, encoder.encode(text));
}

/**
 * The frontend can take input again: a mux drains its buffer, and the loop is woken so the
 * read watch's prepare runs again. @qemu chardev/char-fe.c qemu_chr_fe_accept_input
 */
export function qemuChrFeAcceptInput(be: CharBackend): void {
  const chr = be.chr;
  if (!chr) return;
  chr.driver.acceptInput?.(chr);
  qemuNotifyEvent(chr.m);
}

/**
 * Call `fn` when one of `cond` (G_IO_OUT, G_IO_HUP) holds on the backend's output; `fn`
 * returns false to remove the watch. Returns a tag > 0, or 0 when the backend has nothing to
 * watch (no connection, no such support). @qemu chardev/char-fe.c qemu_chr_fe_add_watch
 */
export function qemuChrFeAddWatch(be: CharBackend, cond: number, fn: ChrWatchFn): number {
  const chr = be.chr;
  if (!chr || !chr.driver.addWatch) return 0;
  return chr.driver.addWatch(chr, cond, fn);
}

/** Remove a watch returned by qemuChrFeAddWatch. @qemu g_source_remove */
export function qemuChrFeRemoveWatch(be: CharBackend, tag: number): boolean {
  const chr = be.chr;
  if (!chr || tag === 0) return false;
  return qemuChrWatchRemove(chr.m, tag);
}

/**
 * Detach the frontend, clearing its handlers (set_open: the frontend closes); with `del` the
 * chardev itself is destroyed. @qemu chardev/char-fe.c qemu_chr_fe_deinit
 */
export function qemuChrFeDeinit(be: CharBackend, del = false): void {
  const chr = be.chr;
  if (!chr) return;
  qemuChrFeSetHandlers(be, null, null, null, null, null, true);
  if (chr.be === be) chr.be = null;
  chr.driver.detach?.(chr, be);
  if (del) chardevDestroy(chr);
  be.chr = null;
}

/** Whether the frontend is attached to a chardev. @qemu qemu_chr_fe_backend_connected */
export function qemuChrFeBackendConnected(be: CharBackend): boolean {
  return be.chr !== null;
}

/** Whether the attached chardev is open (connected). @qemu qemu_chr_fe_backend_open */
export function qemuChrFeBackendOpen(be: CharBackend): boolean {
  return be.chr !== null && be.chr.beOpen;
}

/** The attached chardev. @qemu qemu_chr_fe_get_driver */
export function qemuChrFeGetDriver(be: CharBackend): Chardev | null {
  return be.chr;
}

/** Drop the backend's connection (socket). @qemu chardev/char-fe.c qemu_chr_fe_disconnect */
export function qemuChrFeDisconnect(be: CharBackend): void {
  const chr = be.chr;
  if (chr) chr.driver.disconnect?.(chr);
}

/** Terminal echo on/off (stdio). @qemu chardev/char-fe.c qemu_chr_fe_set_echo */
export function qemuChrFeSetEcho(be: CharBackend, echo: boolean): void {
  const chr = be.chr;
  if (chr) chr.driver.setEcho?.(chr, echo);
}
