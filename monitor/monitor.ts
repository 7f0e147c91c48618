// The monitor core shared by HMP and QMP (monitor/monitor.c): the per-machine monitor set
// (mon_list, newest first), the output buffer with "\n" -> "\r\n" and its flush rules (output is
// dropped when the chardev write fails, held while mux_out, retried from an output watch on a
// short write), suspend/resume with the one-shot accept-input bottom half, and can_read = 1 byte.
// Invariants: suspendCnt >= 0; outWatch != 0 iff a watch is armed; no module-level state.

import { assert } from '../core/util/index.ts';
import {
  type LoopMachine, aioBhScheduleOneshot, G_IO_HUP, G_IO_OUT,
} from '../core/loop/index.ts';
import { type CharBackend, EAGAIN, qemuChrFeAcceptInput, qemuChrFeAddWatch, qemuChrFeWrite } from '../core/char/index.ts';
import { TRACE_CONTROL, traceEvent } from '../core/trace/index.ts';
import type { MonitorMachine } from './machine.ts';
import type { ReadLineState } from './readline.ts';
import { readlineRestart, readlineShowPrompt } from './readline.ts';
import type { JsonMessageParser } from './json-streamer.ts';
import type { QObject } from './qobject.ts';
import type { HmpCommand } from './hmp-commands.ts';
import type { QmpCommand } from './qmp-dispatch.ts';
import { bytesToArray } from './qobject.ts';

/** Fields every monitor has. @qemu monitor/monitor-internal.h Monitor */
export interface MonitorCommon {
  id: number;
  chr: CharBackend;
  /** Pending output as a byte string. */
  outbuf: string;
  suspendCnt: number;
  muxOut: boolean;
  resetSeen: boolean;
  /** human-monitor-command's temporary monitor keeps its output instead of writing it. */
  skipFlush: boolean;
  outWatch: number;
  /** QMP on a GCONTEXT chardev: 'oob' is offered. detvm has no threads; this only affects that. */
  useIoThread: boolean;
  /** mon_cpu_path as a cpu index; null until first used (then the first CPU). */
  monCpuIndex: number | null;
}

/** @qemu monitor/monitor-internal.h MonitorHMP */
export interface MonitorHmp extends MonitorCommon {
  kind: 'hmp';
  useReadline: boolean;
  rs: ReadLineState | null;
}

/** A queued QMP request or a parse error. @qemu monitor/qmp.c QMPRequest */
export interface QmpRequest {
  req: QObject | undefined;
  err: string | null;
}

/** @qemu monitor/monitor-internal.h MonitorQMP */
export interface MonitorQmp extends MonitorCommon {
  kind: 'qmp';
  pretty: boolean;
  parser: JsonMessageParser;
  /** Which command table is active: capability negotiation or the full set. */
  commands: 'negotiation' | 'full';
  capabOffered: { oob: boolean };
  capab: { oob: boolean };
  requests: QmpRequest[];
}

export type Monitor = MonitorHmp | MonitorQmp;

/** State of the single QMP dispatcher coroutine. @qemu monitor/qmp.c qmp_dispatcher_co */
export interface QmpDispatcherState {
  /** qmp_dispatcher_co_busy: a pass is scheduled or running, so a new request needs no wake-up. */
  busy: boolean;
  /** Requests handled so far (for traces and tests). */
  handled: number;
}

/** Rate-limit state of one (event, key) pair. @qemu monitor/monitor.c MonitorQAPIEventState */
export interface EventRateState {
  event: string;
  key: string;
  pending: QObject | null;
  timerArmed: boolean;
}

/** Every monitor of one machine and what they share. */
export interface MonitorSet {
  m: LoopMachine;
  machine: MonitorMachine;
  /** mon_list: the head (index 0) is the most recently created monitor. */
  list: Monitor[];
  nextId: number;
  /** monitor_cur(): the monitor whose command runs now. */
  cur: Monitor | null;
  /** hmp_cmds and hmp_info_cmds, each kept sorted by strcmp of the full name. */
  hmpCmds: HmpCommand[];
  hmpInfoCmds: HmpCommand[];
  /** qmp_commands in registration order, and the negotiation table. */
  qmpCommands: QmpCommand[];
  qmpCapNegotiationCommands: QmpCommand[];
  dispatcher: QmpDispatcherState;
  events: { queue: { event: string; dict: QObject }[]; reentered: boolean; rate: Map<string, EventRateState> };
  /** default_fmt_format / default_fmt_size of the '/' argument type (globals in QEMU). */
  fmt: { format: number; size: number };
  monRefcount: number;
}

/** Create a monitor's common fields. @qemu monitor/monitor.c monitor_data_init */
export function monitorDataInit(mons: MonitorSet, chr: CharBackend, skipFlush: boolean, useIoThread: boolean): MonitorCommon {
  return {
    id: mons.nextId++, chr, outbuf: '', suspendCnt: 0, muxOut: false, resetSeen: false, skipFlush,
    outWatch: 0, useIoThread, monCpuIndex: null,
  };
}

/** Insert at the head of mon_list. @qemu monitor/monitor.c monitor_list_append */
export function monitorListAppend(mons: MonitorSet, mon: Monitor): void {
  mons.list.unshift(mon);
}

export function monitorIsQmp(mon: Monitor): mon is MonitorQmp {
  return mon.kind === 'qmp';
}

function monitorIsHmpNonInteractive(mon: Monitor): boolean {
  return mon.kind === 'hmp' && !mon.useReadline;
}

/** Output watch callback: retry the flush once writable. @qemu monitor_unblocked */
function monitorUnblocked(mons: MonitorSet, mon: Monitor): boolean {
  mon.outWatch = 0;
  monitorFlushLocked(mons, mon);
  return false;
}

/**
 * Write the buffered output with one attempt. A failed write (no client) drops the output; a
 * short write or EAGAIN keeps the rest and arms an output watch. Nothing is written while mux_out.
 * @qemu monitor/monitor.c monitor_flush_locked
 */
export function monitorFlushLocked(mons: MonitorSet, mon: Monitor): void {
  if (mon.skipFlush) return;
  const len = mon.outbuf.length;
  if (len === 0 || mon.muxOut) return;
  const rc = qemuChrFeWrite(mon.chr, bytesToArray(mon.outbuf));
  // An error drops the output (nobody connected); EAGAIN (a full socket) keeps it for the watch.
  if ((rc < 0 && mon.chr.chr?.errno !== EAGAIN) || rc === len) {
    mon.outbuf = '';
    return;
  }
  if (rc > 0) mon.outbuf = mon.outbuf.slice(rc);
  if (mon.outWatch === 0) {
    mon.outWatch = qemuChrFeAddWatch(mon.chr, G_IO_OUT | G_IO_HUP, () => monitorUnblocked(mons, mon));
  }
}

/** @qemu monitor/monitor.c monitor_flush */
export function monitorFlush(mons: MonitorSet, mon: Monitor): void {
  monitorFlushLocked(mons, mon);
}

/**
 * Append a byte string, turning each "\n" into "\r\n" and flushing after every line. Returns
 * the number of bytes of `str`. @qemu monitor/monitor.c monitor_puts
 */
export function monitorPuts(mons: MonitorSet, mon: Monitor, str: string): number {
  let from = 0;
  for (let i = 0; i <= str.length; i++) {
    const nl = str.indexOf('\n', from);
    if (nl < 0) {
      mon.outbuf += str.slice(from);
      break;
    }
    mon.outbuf += str.slice(from, nl) + '\r\n';
    from = nl + 1;
    monitorFlushLocked(mons, mon);
  }
  return str.length;
}

/** Print on an HMP monitor; QMP monitors print nothing (-1). @qemu monitor_printf */
export function monitorPrintf(mons: MonitorSet, mon: Monitor, text: string): number {
  if (monitorIsQmp(mon)) return -1;
  return monitorPuts(mons, mon, text);
}

/**
 * error_report: on the current HMP monitor as a bare line, else on stderr prefixed with the
 * program name. @qemu util/qemu-error.c error_report
 */
export function errorReport(mons: MonitorSet, msg: string): void {
  const cur = mons.cur;
  if (cur && cur.kind === 'hmp') monitorPuts(mons, cur, msg + '\n');
  else mons.machine.hostStderr(`qemu-system-riscv32: ${msg}\n`);
}

/** Stop taking input. -ENOTTY (-25) for a non-interactive HMP. @qemu monitor_suspend */
export function monitorSuspend(mons: MonitorSet, mon: Monitor): number {
  if (monitorIsHmpNonInteractive(mon)) return -25;
  mon.suspendCnt++;
  traceEvent(mons.m, TRACE_CONTROL, 'monitor_suspend', { mon: mon.id, delta: 1 });
  return 0;
}

/**
 * Undo one suspend; at zero, a one-shot BH re-enables input (and shows the HMP prompt).
 * @qemu monitor/monitor.c monitor_resume
 */
export function monitorResume(mons: MonitorSet, mon: Monitor): void {
  if (monitorIsHmpNonInteractive(mon)) return;
  assert(mon.suspendCnt > 0, `monitor ${mon.id}: resume without suspend`);
  mon.suspendCnt--;
  traceEvent(mons.m, TRACE_CONTROL, 'monitor_suspend', { mon: mon.id, delta: -1 });
  if (mon.suspendCnt === 0) {
    aioBhScheduleOneshot(mons.m.loop.aio, 'monitor_accept_input', () => monitorAcceptInput(mons, mon));
  }
}

/** @qemu monitor/monitor.c monitor_accept_input */
function monitorAcceptInput(mons: MonitorSet, mon: Monitor): void {
  if (mon.kind === 'hmp' && mon.resetSeen) {
    assert(mon.rs !== null, 'interactive HMP monitor without readline');
    readlineRestart(mon.rs);
    readlineShowPrompt(mon.rs);
  }
  qemuChrFeAcceptInput(mon.chr);
}

/** Both HMP and QMP take at most one byte per read. @qemu monitor/monitor.c monitor_can_read */
export function monitorCanRead(mon: Monitor): number {
  return mon.suspendCnt === 0 ? 1 : 0;
}

/** Run `fn` with `mon` as monitor_cur(), restoring the previous one. @qemu monitor_set_cur */
export function withCurMonitor<T>(mons: MonitorSet, mon: Monitor, fn: () => T): T {
  const old = mons.cur;
  mons.cur = mon;
  try {
    return fn();
  } finally {
    mons.cur = old;
  }
}

/** The monitor's current CPU index (the first CPU by default), or -1 without CPUs. @qemu monitor_get_cpu_index */
export function monitorGetCpuIndex(mons: MonitorSet, mon: Monitor): number {
  const cpus = mons.machine.cpus();
  if (mon.monCpuIndex !== null && cpus.some((c) => c.cpuIndex === mon.monCpuIndex)) return mon.monCpuIndex;
  const first = cpus[0];
  if (!first) return -1;
  mon.monCpuIndex = first.cpuIndex;
  return first.cpuIndex;
}

/** Select the monitor's CPU; -1 if there is no such CPU. @qemu monitor_set_cpu */
export function monitorSetCpu(mons: MonitorSet, mon: Monitor, cpuIndex: number): number {
  if (!mons.machine.cpus().some((c) => c.cpuIndex === cpuIndex)) return -1;
  mon.monCpuIndex = cpuIndex;
  return 0;
}
