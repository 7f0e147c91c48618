// The HMP front end (monitor/hmp.c): creating a monitor on a chardev, feeding input bytes to
// readline (monitor_read), running entered lines (monitor_command_cb -> handle_hmp_command) with
// the monitor suspended, and chardev events: OPENED prints the banner and prompt, MUX_IN/MUX_OUT
// move the focus. Call chain traced: monitor_read > readline_handle_byte > monitor_command_cb >
// handle_hmp_command > hmp_<cmd>.

import { type CharBackend, type Chardev, type QEMUChrEvent, CHR_EVENT_BREAK, CHR_EVENT_CLOSED,
  CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT, CHR_EVENT_OPENED, CHR_EVENT_NAMES, charBackendCreate, qemuChrFeInit,
  qemuChrFeSetHandlers } from '../core/char/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceSpan } from '../core/trace/index.ts';
import type { MonitorHmp, MonitorSet } from './monitor.ts';
import {
  monitorCanRead, monitorDataInit, monitorFlush, monitorListAppend, monitorPrintf, monitorPuts,
  monitorResume, monitorSuspend, withCurMonitor,
} from './monitor.ts';
import { readlineHandleByte, readlineInit, readlineRestart, readlineShowPrompt, readlineStart } from './readline.ts';
import { type HmpCommand, cmdAvailable, searchDispatchTable } from './hmp-commands.ts';
import { monitorParseArguments } from './hmp-args.ts';
import { isSpaceCode } from './hmp-expr.ts';
import { monitorFindCompletion } from './hmp-completion.ts';
import { arrayToBytes } from './qobject.ts';

/** Options of monitor_init_hmp. */
export interface HmpOptions {
  /** false for a monitor without line editing (QEMU's gdbstub monitor). Default true. */
  useReadline?: boolean;
}

/** Trace-name of a handler: 'hmp_' + first alias with '-' as '_' (hmp_cont, hmp_info_status). */
function handlerTraceName(prefix: string, cmd: HmpCommand): string {
  return `hmp_${prefix}${cmd.name.split('|')[0]!.replace(/-/g, '_')}`;
}

/**
 * Look up the command at the start of `line` (after `pos`), recursing into `info`'s table.
 * Prints "unknown command" / "not available" errors. @qemu monitor/hmp.c monitor_parse_command
 */
function monitorParseCommand(mons: MonitorSet, mon: MonitorHmp, line: string, pos: number, table: readonly HmpCommand[], prefix: string): { cmd: HmpCommand; pos: number; prefix: string } | null {
  let p = pos;
  while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
  if (p >= line.length) return null;
  const start = p;
  while (p < line.length && line[p] !== '/' && !isSpaceCode(line.charCodeAt(p))) p++;
  const name = line.slice(start, Math.min(p, start + 255));
  const cmd = searchDispatchTable(table, name);
  if (!cmd) {
    monitorPrintf(mons, mon, `unknown command: '${line.slice(0, p)}'\n`);
    return null;
  }
  if (!cmdAvailable(mons, cmd)) {
    monitorPrintf(mons, mon, `Command '${line.slice(0, p)}' not available until machine initialization has completed.\n`);
    return null;
  }
  while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
  if (cmd.subTable && p < line.length) {
    return monitorParseCommand(mons, mon, line, p, cmd.subTable, prefix + cmd.name.split('|')[0] + '_');
  }
  return { cmd, pos: p, prefix };
}

/**
 * Parse and run one command line (a byte string) on `mon`.
 * @qemu monitor/hmp.c handle_hmp_command
 */
export function handleHmpCommand(mons: MonitorSet, mon: MonitorHmp, cmdline: string): void {
  const m = mons.m;
  const opened = traceEnter(m, TRACE_CONTROL, 'handle_hmp_command', { mon: mon.id, cmdline });
  try {
    const found = monitorParseCommand(mons, mon, cmdline, 0, mons.hmpCmds, '');
    if (!found) return;
    const { cmd, pos } = found;
    if (!cmd.cmd) {
      monitorPrintf(mons, mon, `Command "${cmdline.slice(0, pos)}" is not available.\n`);
      return;
    }
    const args = monitorParseArguments(mons, mon, cmd, cmdline.slice(pos));
    if (!args) {
      let end = pos;
      while (end > 0 && isSpaceCode(cmdline.charCodeAt(end - 1))) end--;
      monitorPrintf(mons, mon, `Try "help ${cmdline.slice(0, end)}" for more information\n`);
      return;
    }
    const handler = cmd.cmd;
    traceSpan(m, TRACE_CONTROL, handlerTraceName(found.prefix, cmd), undefined, () =>
      withCurMonitor(mons, mon, () => handler(mons, mon, args)));
  } finally {
    traceExit(m, opened, 'handle_hmp_command');
  }
}

/** readline's line callback. @qemu monitor/hmp.c monitor_command_cb */
function monitorCommandCb(mons: MonitorSet, mon: MonitorHmp, cmdline: string): void {
  const opened = traceEnter(mons.m, TRACE_CONTROL, 'monitor_command_cb', { mon: mon.id });
  monitorSuspend(mons, mon);
  handleHmpCommand(mons, mon, cmdline);
  monitorResume(mons, mon);
  traceExit(mons.m, opened, 'monitor_command_cb');
}

/** Input bytes from the chardev. @qemu monitor/hmp.c monitor_read */
export function monitorRead(mons: MonitorSet, mon: MonitorHmp, buf: Uint8Array): void {
  const m = mons.m;
  const opened = traceEnter(m, TRACE_CONTROL, 'monitor_read', { mon: mon.id, len: buf.length });
  if (mon.rs) {
    for (let i = 0; i < buf.length; i++) {
      const o = traceEnter(m, TRACE_CONTROL, 'readline_handle_byte', { ch: buf[i]! });
      readlineHandleByte(mon.rs, buf[i]!);
      traceExit(m, o, 'readline_handle_byte');
    }
  } else if (buf.length === 0 || buf[buf.length - 1] !== 0) {
    monitorPrintf(mons, mon, 'corrupted command\n');
  } else {
    const line = arrayToBytes(buf.subarray(0, buf.indexOf(0)));
    handleHmpCommand(mons, mon, line);
  }
  traceExit(m, opened, 'monitor_read');
}

/** The banner QEMU prints on OPENED. */
export function hmpBanner(mons: MonitorSet): string {
  const v = mons.machine.version;
  return `QEMU ${v.major}.${v.minor}.${v.micro} monitor - type 'help' for more information\n`;
}

/** Chardev events. @qemu monitor/hmp.c monitor_event */
export function monitorEvent(mons: MonitorSet, mon: MonitorHmp, event: QEMUChrEvent): void {
  const opened = traceEnter(mons.m, TRACE_CONTROL, 'monitor_event', { mon: mon.id, event: CHR_EVENT_NAMES[event] });
  switch (event) {
    case CHR_EVENT_MUX_IN:
      mon.muxOut = false;
      if (mon.resetSeen) {
        if (mon.rs) readlineRestart(mon.rs);
        monitorResume(mons, mon);
        monitorFlush(mons, mon);
      } else {
        mon.suspendCnt = 0;
      }
      break;
    case CHR_EVENT_MUX_OUT:
      if (mon.resetSeen) {
        if (mon.suspendCnt === 0) monitorPrintf(mons, mon, '\n');
        monitorFlush(mons, mon);
        monitorSuspend(mons, mon);
      } else {
        mon.suspendCnt++;
      }
      mon.muxOut = true;
      break;
    case CHR_EVENT_OPENED:
      monitorPuts(mons, mon, hmpBanner(mons));
      if (!mon.muxOut && mon.rs) {
        readlineRestart(mon.rs);
        readlineShowPrompt(mon.rs);
      }
      mon.resetSeen = true;
      mons.monRefcount++;
      break;
    case CHR_EVENT_CLOSED:
      mons.monRefcount--;
      break;
    case CHR_EVENT_BREAK:
      break;
  }
  traceExit(mons.m, opened, 'monitor_event');
}

/**
 * Create an HMP monitor on `chr` (QEMU's -monitor / -serial mon:). Fails with QEMU's
 * "Device '%s' is in use" when the chardev already serves a frontend.
 * @qemu monitor/hmp.c monitor_init_hmp
 */
export function monitorInitHmp(mons: MonitorSet, chr: Chardev, opts: HmpOptions = {}): MonitorHmp | { error: string } {
  const be: CharBackend = charBackendCreate();
  const err = qemuChrFeInit(be, chr);
  if (err) return { error: err.desc };
  const mon = hmpMonitorCreate(mons, be, opts.useReadline ?? true, false);
  qemuChrFeSetHandlers(
    be,
    () => monitorCanRead(mon),
    (_o, buf) => monitorRead(mons, mon, buf),
    (_o, ev) => monitorEvent(mons, mon, ev),
    null, mon, true,
  );
  monitorListAppend(mons, mon);
  return mon;
}

/** The MonitorHMP object with its readline (monitor_data_init + readline_init + monitor_read_command). */
export function hmpMonitorCreate(mons: MonitorSet, be: CharBackend, useReadline: boolean, skipFlush: boolean): MonitorHmp {
  const mon: MonitorHmp = { ...monitorDataInit(mons, be, skipFlush, false), kind: 'hmp', useReadline, rs: null };
  if (useReadline) {
    mon.rs = readlineInit({
      print: (text) => void monitorPrintf(mons, mon, text),
      flush: () => monitorFlush(mons, mon),
      completionFinder: (rs, line) => monitorFindCompletion(mons, rs, line),
      lineEntered: (line) => monitorCommandCb(mons, mon, line),
    });
    readlineStart(mon.rs, '(qemu) ', false);
  }
  return mon;
}
