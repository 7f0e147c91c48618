// The fd chardev base (chardev/char-fd.c) shared by file and stdio: reads through the
// flow-controlled IOWatchPoll (fd_chr_read, one read of at most min(4096, can_read) bytes per
// dispatch), writes with io_channel_send (short on back-pressure), output watches on the
// output descriptor. At end of input the read watch is removed and CLOSED is sent.

import {
  type Chardev, type ChardevDriver, CHR_EVENT_CLOSED, CHR_READ_BUF_LEN, chrAddFdWatch,
  chrWatchDropFd, ioAddWatchPoll, ioChannelSendFull, qemuChrBeCanWrite, qemuChrBeEvent,
  qemuChrBeWrite, removeFdInWatch,
} from '../core/char/index.ts';
import { type VirtualFd, vfdClose, vfdRead } from '../core/loop/index.ts';
import { assert } from '../core/util/index.ts';

/** @qemu include/chardev/char-fd.h FDChardev (the plain part) */
export interface FdChardevState {
  name: 'fd';
  maxSize: number;
  inFd: number | null;
  outFd: number;
}

export interface FdChardevIo {
  in: VirtualFd | null;
  out: VirtualFd;
  /** Extra release work of the concrete backend (stdio restores the terminal). */
  onFinalize: (() => void) | null;
  /** Terminal echo control (stdio), or null. */
  setEcho: ((echo: boolean) => void) | null;
}

function fdState(chr: Chardev): FdChardevState {
  const s = chr.state as FdChardevState;
  assert(s?.name === 'fd', `chardev '${chr.label}' is not fd-based`);
  return s;
}

function fdIo(chr: Chardev): FdChardevIo {
  assert(chr.io !== null, `chardev '${chr.label}' has no descriptors (finalized?)`);
  return chr.io as FdChardevIo;
}

/** @qemu chardev/char-fd.c fd_chr_read_poll */
function fdChrReadPoll(chr: Chardev): number {
  const s = fdState(chr);
  s.maxSize = qemuChrBeCanWrite(chr);
  return s.maxSize;
}

/** One read; EOF removes the watch and sends CLOSED. @qemu chardev/char-fd.c fd_chr_read */
function fdChrRead(chr: Chardev): boolean {
  const s = fdState(chr);
  const io = fdIo(chr);
  const len = Math.min(CHR_READ_BUF_LEN, s.maxSize);
  if (len <= 0 || !io.in) return true;
  const data = vfdRead(io.in, len);
  if (io.in.inboundBytes > 0) chr.m.loop.inputLeftover = true;
  if (data.length === 0) {
    if (!io.in.hup) return true; // EAGAIN
    removeFdInWatch(chr);
    qemuChrBeEvent(chr, CHR_EVENT_CLOSED);
    return false;
  }
  qemuChrBeWrite(chr, data);
  return true;
}

/** @qemu chardev/char-fd.c fd_chr_write */
export function fdChrWrite(chr: Chardev, buf: Uint8Array): number {
  return ioChannelSendFull(chr, fdIo(chr).out, buf);
}

/** @qemu chardev/char-fd.c fd_chr_update_read_handler */
export function fdChrUpdateReadHandler(chr: Chardev): void {
  const io = fdIo(chr);
  removeFdInWatch(chr);
  if (!io.in) return;
  const read = (): boolean => fdChrRead(chr);
  chr.gsource = ioAddWatchPoll(chr, io.in, () => fdChrReadPoll(chr), read, 'fd_chr_read');
}

/** @qemu chardev/char-fd.c fd_chr_add_watch */
export function fdChrAddWatch(chr: Chardev, cond: number, fn: (cond: number) => boolean): number {
  return chrAddFdWatch(chr, fdIo(chr).out, cond, fn);
}

/** @qemu chardev/char-fd.c char_fd_finalize */
export function charFdFinalize(chr: Chardev): void {
  const io = fdIo(chr);
  removeFdInWatch(chr);
  if (io.in) vfdClose(chr.m.fdt, io.in);
  chrWatchDropFd(chr.m, io.out.id);
  vfdClose(chr.m.fdt, io.out);
  io.onFinalize?.();
  qemuChrBeEvent(chr, CHR_EVENT_CLOSED);
}

/** Install the descriptors of an fd chardev. @qemu chardev/char-fd.c qemu_chr_open_fd */
export function qemuChrOpenFd(
  chr: Chardev, fdIn: VirtualFd | null, fdOut: VirtualFd,
  extra: Pick<FdChardevIo, 'onFinalize' | 'setEcho'> = { onFinalize: null, setEcho: null },
): void {
  const state: FdChardevState = { name: 'fd', maxSize: 0, inFd: fdIn?.id ?? null, outFd: fdOut.id };
  chr.state = state;
  chr.io = { in: fdIn, out: fdOut, ...extra } satisfies FdChardevIo;
}

/** The fd chardev hooks, specialised per backend by `type`. @qemu char_fd_class_init */
export function fdDriver(type: string, extra: Partial<ChardevDriver> = {}): ChardevDriver {
  return {
    type, write: fdChrWrite, updateReadHandlers: fdChrUpdateReadHandler, addWatch: fdChrAddWatch,
    finalize: charFdFinalize, setEcho: (chr, echo) => fdIo(chr).setEcho?.(echo), ...extra,
  };
}
