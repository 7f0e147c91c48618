// The machine's chardevs (QEMU's "/chardevs" container, chardev/char.c): lookup by label, the
// data behind `info chardev` / query-chardev, output watch tags, the per-machine globals QEMU
// keeps in statics (muxes_opened, term_escape_char, stdio_in_use), error reports and the hooks
// through which a chardev asks the machine for something (Ctrl-A x, Ctrl-A s, a tty signal).
// Invariants: labels are unique; `chardevs` keeps creation order; watch tags are never reused.

import type { LoopMachine, LoopSource } from '../loop/index.ts';
import { gSourceDestroy, vfdClose } from '../loop/index.ts';
import type { ChardevIo, StdioSignal } from '../host/index.ts';
import type { Chardev } from './char.ts';

/** A message for the user, as error_report / warn_report / info_report print it. */
export interface ChrReport {
  level: 'error' | 'warning' | 'info';
  msg: string;
  /** A follow-up printed as is on the next line(s) (error_printf / error_append_hint). */
  hint?: string;
}

/** Requests a chardev makes of the machine; the composition root wires them. */
export interface CharHooks {
  /** Ctrl-A x on a mux: QEMU 7.2 exit(0)s right after printing "QEMU: Terminated". */
  muxExit: ((chr: Chardev) => void) | null;
  /** Ctrl-A s on a mux. @qemu blk_commit_all */
  blkCommitAll: (() => void) | null;
  /** The tty raised a signal (stdio signal=on): QEMU terminates on SIGINT. */
  stdioSignal: ((sig: StdioSignal) => void) | null;
}

export interface CharState {
  chardevs: Map<string, Chardev>;
  /** @qemu chardev/char-mux.c muxes_opened (false between suspend_mux_open and resume_mux_open) */
  muxesOpened: boolean;
  /** @qemu term_escape_char (-echr) */
  termEscapeChar: number;
  /** @qemu chardev/char-stdio.c stdio_in_use */
  stdioInUse: boolean;
  /** Output watches by tag (qemu_chr_fe_add_watch's return value) and the descriptor watched. */
  watches: Map<number, { src: LoopSource; fdId: number }>;
  nextWatchTag: number;
  /** Sockets, stdio and files: the real host (live) or in-memory stand-ins (virtual). */
  io: ChardevIo | null;
  /** Reports not consumed by a sink, oldest first (bounded by REPORTS_MAX). */
  reports: ChrReport[];
  reportSink: ((r: ChrReport) => void) | null;
  hooks: CharHooks;
}

/** A machine with chardevs. */
export interface CharMachine extends LoopMachine {
  char: CharState;
}

const REPORTS_MAX = 1000;

export function charStateCreate(): CharState {
  return {
    chardevs: new Map(), muxesOpened: true, termEscapeChar: 0x01, stdioInUse: false,
    watches: new Map(), nextWatchTag: 1, io: null, reports: [], reportSink: null,
    hooks: { muxExit: null, blkCommitAll: null, stdioSignal: null },
  };
}

/** The chardev state of `m`, created on first use. */
export function charState(m: LoopMachine): CharState {
  const cm = m as Partial<CharMachine> & LoopMachine;
  if (!cm.char) cm.char = charStateCreate();
  return cm.char;
}

/** Print a report: to the sink if one is set, else keep it in `reports`. @qemu error_report */
export function chrReport(m: LoopMachine, r: ChrReport): void {
  const s = charState(m);
  if (s.reportSink) {
    s.reportSink(r);
    return;
  }
  if (s.reports.length >= REPORTS_MAX) s.reports.shift();
  s.reports.push(r);
}

/**
 * Format a report as QEMU prints it on stderr: "PROG: LOC: warning: MSG\n" (`loc` is the
 * option being processed, e.g. "-chardev socket,id=c0,...", or null), then the hint.
 * @qemu util/qemu-error.c vreport
 */
export function chrReportFormat(r: ChrReport, prog: string, loc: string | null): string {
  const level = r.level === 'warning' ? 'warning: ' : r.level === 'info' ? 'info: ' : '';
  return `${prog}: ${loc ? `${loc}: ` : ''}${level}${r.msg}\n${r.hint ?? ''}`;
}

/** Find a chardev by label. @qemu chardev/char.c qemu_chr_find */
export function qemuChrFind(m: LoopMachine, label: string): Chardev | null {
  return charState(m).chardevs.get(label) ?? null;
}

/** Add a created chardev to the machine. Returns an error text if the label is taken. */
export function chardevRegister(m: LoopMachine, chr: Chardev): string | null {
  const s = charState(m);
  if (s.chardevs.has(chr.label)) return `Chardev with id '${chr.label}' already exists`;
  s.chardevs.set(chr.label, chr);
  return null;
}

/** Remove a chardev and release its host resources (object_unparent). */
export function chardevDestroy(chr: Chardev): void {
  const s = charState(chr.m);
  if (s.chardevs.get(chr.label) === chr) s.chardevs.delete(chr.label);
  // The driver's finalize runs first (a socket still sends CLOSED to its frontend), then the
  // frontend is cut loose, as char_socket_finalize precedes char_finalize in QEMU.
  chr.driver.finalize?.(chr);
  if (chr.be) chr.be.chr = null;
  if (chr.logfd) vfdClose(chr.m.fdt, chr.logfd);
  chr.logfd = null;
}

/** Whether a frontend holds `chr`. @qemu chardev/char.c qemu_chr_is_busy */
export function qemuChrIsBusy(chr: Chardev): boolean {
  return chr.driver.isBusy ? chr.driver.isBusy(chr) : chr.be !== null;
}

/** One entry of query-chardev. @qemu qapi/char.json ChardevInfo */
export interface ChardevInfo {
  label: string;
  filename: string;
  'frontend-open': boolean;
}

/**
 * The chardevs of `m` with their filename and whether a frontend has them open. detvm lists
 * them in creation order; QEMU walks a GLib hash table, whose order is not reproducible.
 * @qemu chardev/char.c qmp_query_chardev
 */
export function qmpQueryChardev(m: LoopMachine): ChardevInfo[] {
  const out: ChardevInfo[] = [];
  for (const chr of charState(m).chardevs.values()) {
    const feOpen = chr.be !== null && chr.be.feOpen;
    out.push({ label: chr.label, filename: chr.filename, 'frontend-open': feOpen });
  }
  return out;
}

/** The text of HMP `info chardev` ("LABEL: filename=F\n" per chardev). @qemu hmp_info_chardev */
export function hmpInfoChardev(m: LoopMachine): string {
  return qmpQueryChardev(m).map((i) => `${i.label}: filename=${i.filename}\n`).join('');
}

/** Register an output watch source on descriptor `fdId` and return its tag (> 0). */
export function chrWatchRegister(m: LoopMachine, src: LoopSource, fdId: number): number {
  const s = charState(m);
  const tag = s.nextWatchTag++;
  s.watches.set(tag, { src, fdId });
  return tag;
}

/** Remove an output watch by tag; false if it no longer exists. @qemu g_source_remove */
export function qemuChrWatchRemove(m: LoopMachine, tag: number): boolean {
  const s = charState(m);
  const w = s.watches.get(tag);
  if (!w) return false;
  s.watches.delete(tag);
  const existed = w.src.attached;
  gSourceDestroy(m.loop.sources, w.src);
  return existed;
}

/**
 * Drop the watches on a descriptor that is being closed: in QEMU they would never fire again
 * (a closed fd polls as G_IO_NVAL only); detvm detaches them so they cost nothing.
 */
export function chrWatchDropFd(m: LoopMachine, fdId: number): void {
  const s = charState(m);
  for (const [tag, w] of [...s.watches]) {
    if (w.fdId !== fdId) continue;
    s.watches.delete(tag);
    gSourceDestroy(m.loop.sources, w.src);
  }
}

/** Forget the tag of a watch that removed itself (its callback returned false). */
export function chrWatchForget(m: LoopMachine, tag: number): void {
  charState(m).watches.delete(tag);
}
