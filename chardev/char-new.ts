// Creating, adding and removing chardevs (chardev/char.c, 7.2): chardev_new (logfile, driver
// open, default filename, OPENED when the backend starts open), qemu_chardev_new,
// qemu_chr_new_from_opts (with mux=on: the real backend as "ID-base" and a mux "ID" over it),
// qemu_chr_new for legacy specs (mon:, tcp:...), and the QMP commands chardev-add,
// chardev-remove and chardev-send-break. Nothing here throws on bad input.

import {
  type Chardev, type ChrReport, CHR_EVENT_BREAK, CHR_EVENT_OPENED, charState, chardevDestroy,
  chardevRegister, qemuChrBeEvent, qemuChrFind, qemuChrIsBusy,
} from '../core/char/index.ts';
import { type LoopMachine, vfdClose } from '../core/loop/index.ts';
import { qemuChrParseCompat } from './char-opts.ts';
import { type ChardevBackend, qemuChrBackendHelp, qemuChrParseOpts } from './char-parse.ts';
import type { OpenResult } from './char-driver.ts';
import { qmpChardevOpenFile } from './char-file.ts';
import { qemuChrOpenMux } from './char-mux.ts';
import { qemuChrOpenNull } from './char-null.ts';
import { ringbufChrOpen } from './char-ringbuf.ts';
import { qemuChrOpenStdio } from './char-stdio.ts';
import { chardevIo } from './chardev-io.ts';
import {
  type QemuOpts, type QemuOptsList, isHelpOption, qemuOptGet, qemuOptGetBool, qemuOptsDel,
} from './qemu-option.ts';
import { qmpChardevOpenSocket } from './socket-open.ts';

export type ChrResult<T> = { ok: true; value: T } | { ok: false; error: string };

function driverOpen(m: LoopMachine, id: string, backend: ChardevBackend): OpenResult {
  const io = chardevIo(m);
  switch (backend.type) {
    case 'null': return qemuChrOpenNull(m, id);
    case 'socket': return qmpChardevOpenSocket(m, id, backend.sock, io.net);
    case 'file':
      return qmpChardevOpenFile(m, id, io.files, backend.out, backend.in, backend.append);
    case 'stdio': return qemuChrOpenStdio(m, id, io.stdio, backend.signal);
    case 'ringbuf':
    case 'memory': return ringbufChrOpen(m, id, backend.type, backend.size);
    case 'mux': return qemuChrOpenMux(m, id, backend.chardev);
  }
}

/**
 * Open a chardev (not yet registered): logfile first, then the driver; OPENED right away when
 * the backend starts open (nobody is attached yet, so only `beOpen` records it).
 * @qemu chardev/char.c chardev_new / qemu_char_open
 */
export function chardevNew(
  m: LoopMachine, id: string, backend: ChardevBackend, replay = false,
): ChrResult<Chardev> {
  let logfd = null;
  if (backend.common.logfile !== null) {
    const l = chardevIo(m).files.openOut(backend.common.logfile, backend.common.logappend);
    if (!l.ok) return { ok: false, error: l.error };
    logfd = l.fd;
  }
  const r = driverOpen(m, id, backend);
  if (!r.ok) {
    if (logfd) vfdClose(m.fdt, logfd);
    return { ok: false, error: r.error };
  }
  const chr = r.chr;
  chr.logfd = logfd;
  chr.replay = replay;
  if (r.beOpened) qemuChrBeEvent(chr, CHR_EVENT_OPENED);
  return { ok: true, value: chr };
}

/** Open and register. @qemu chardev/char.c qemu_chardev_new */
export function qemuChardevNew(
  m: LoopMachine, id: string, backend: ChardevBackend, replay = false,
): ChrResult<Chardev> {
  if (qemuChrFind(m, id)) {
    const error = `attempt to add duplicate property '${id}' to object (type 'container')`;
    return { ok: false, error };
  }
  const r = chardevNew(m, id, backend, replay);
  if (!r.ok) return r;
  chardevRegister(m, r.value);
  return r;
}

/** What qemu_chr_new_from_opts produced: a chardev, an error, or the `-chardev help` text. */
export type NewFromOptsResult =
  | { ok: true; chr: Chardev }
  | { ok: false; error: string; help?: string };

/**
 * Create the chardev described by parsed `-chardev` options. With mux=on the backend is
 * created as "ID-base" and a mux named ID over it is returned. `replay` marks the real
 * backend as carrying replayable input. @qemu chardev/char.c __qemu_chr_new_from_opts
 */
export function qemuChrNewFromOpts(
  m: LoopMachine, opts: QemuOpts, replay = false,
): NewFromOptsResult {
  const name = qemuOptGet(opts, 'backend');
  if (name !== null && isHelpOption(name)) {
    return { ok: false, error: '', help: qemuChrBackendHelp() };
  }
  const id = opts.id;
  if (id === null) return { ok: false, error: 'chardev: no id specified' };
  const parsed = qemuChrParseOpts(opts);
  if (!parsed.ok) return parsed;
  const bid = qemuOptGetBool(opts, 'mux', false) ? `${id}-base` : null;
  const base = qemuChardevNew(m, bid ?? id, parsed.value, replay);
  if (!base.ok) return base;
  if (bid === null) return { ok: true, chr: base.value };
  const common = { logfile: null, logappend: false };
  const mux = qemuChardevNew(m, id, { type: 'mux', common, chardev: bid });
  if (!mux.ok) {
    chardevDestroy(base.value);
    return mux;
  }
  return { ok: true, chr: mux.value };
}

/** A legacy chardev: the chardev, and whether the caller must put an HMP monitor on it (mon:). */
export type ChrNewResult =
  | { ok: true; chr: Chardev; muxMonitor: boolean }
  | { ok: false; report: ChrReport | null };

/**
 * Create a chardev from a legacy spec ("tcp:127.0.0.1:4444,server=on,wait=off", "mon:stdio",
 * "chardev:ID" for an existing one). With `permitMuxMon` a "mon:" spec creates a mux and asks
 * the caller to attach an HMP monitor (monitor_init_hmp(chr, true)). A failed parse may have no
 * report: QEMU then prints only the caller's message ("could not connect serial device...").
 * @qemu chardev/char.c __qemu_chr_new / qemu_chr_new_mux_mon
 */
export function qemuChrNew(
  m: LoopMachine, list: QemuOptsList, label: string, filename: string, permitMuxMon: boolean,
  replay = false,
): ChrNewResult {
  if (filename.startsWith('chardev:')) {
    const chr = qemuChrFind(m, filename.slice(8));
    if (chr && replay) chr.replay = true;
    return chr ? { ok: true, chr, muxMonitor: false } : { ok: false, report: null };
  }
  const c = qemuChrParseCompat(list, label, filename, permitMuxMon);
  if (!c.ok) return c;
  const r = qemuChrNewFromOpts(m, c.opts, replay);
  const muxMonitor = qemuOptGetBool(c.opts, 'mux', false);
  qemuOptsDel(c.opts);
  if (!r.ok) {
    const report: ChrReport = r.help !== undefined
      ? { level: 'info', msg: r.help }
      : { level: 'error', msg: r.error };
    return { ok: false, report };
  }
  return { ok: true, chr: r.chr, muxMonitor };
}

/** @qemu chardev/char.c qmp_chardev_add */
export function qmpChardevAdd(
  m: LoopMachine, id: string, backend: ChardevBackend,
): ChrResult<Chardev> {
  if (qemuChrFind(m, id)) return { ok: false, error: `Chardev with id '${id}' already exists` };
  const r = chardevNew(m, id, backend);
  if (!r.ok) return { ok: false, error: `Failed to add chardev '${id}': ${r.error}` };
  chardevRegister(m, r.value);
  return r;
}

/** @qemu chardev/char.c qmp_chardev_remove */
export function qmpChardevRemove(m: LoopMachine, id: string): ChrResult<void> {
  const chr = qemuChrFind(m, id);
  if (!chr) return { ok: false, error: `Chardev '${id}' not found` };
  if (qemuChrIsBusy(chr)) return { ok: false, error: `Chardev '${id}' is busy` };
  if (chr.replay) {
    return { ok: false, error: `Chardev '${id}' cannot be unplugged in record/replay mode` };
  }
  chardevDestroy(chr);
  return { ok: true, value: undefined };
}

/** @qemu chardev/char.c qmp_chardev_send_break */
export function qmpChardevSendBreak(m: LoopMachine, id: string): ChrResult<void> {
  const chr = qemuChrFind(m, id);
  if (!chr) return { ok: false, error: `Chardev '${id}' not found` };
  qemuChrBeEvent(chr, CHR_EVENT_BREAK);
  return { ok: true, value: undefined };
}

/** Destroy every chardev of `m`, muxes first (machine teardown: sockets closed, tty restored). */
export function qemuChrCleanup(m: LoopMachine): void {
  const all = [...charState(m).chardevs.values()];
  for (const chr of all) if (chr.driver.type === 'mux') chardevDestroy(chr);
  for (const chr of all) if (chr.driver.type !== 'mux') chardevDestroy(chr);
}
