// The record/replay monitor commands (QEMU 7.2 hmp-commands.hx / hmp-commands-info.hx and
// qapi/replay.json, handlers in replay/replay-debugging.c): replay_break, replay_delete_break,
// replay_seek, info replay; query-replay, replay-break, replay-delete-break, replay-seek, with
// QEMU's texts. In a replay the monitors of the log see the recording ("Recording execution"),
// so their output is reproduced byte for byte; the debugger's own monitor (replayDebugHmp/Qmp)
// sees play mode and runs its commands out of band: each command runs on a temporary monitor
// and its effects on the machine are undone, then the debugger actions it asked for run.
// Beyond QEMU: any number of breakpoints (replay_delete_break without an argument removes all).

import {
  type ReplayDebugger, type ReplayHeader, type ReplayMachine, type ReplayRunOptions, type ReplayStop, type RecordEngine,
  type PlayOutput, logEventDescribe, replayDebuggerBreak, replayDebuggerDeleteBreak, replayDebuggerIcount,
  replayDebuggerIsolated, replayDebuggerRun, replayDebuggerRunPending, replayDebuggerSeek, replayDebuggerStats,
  replayDebuggerStep, replayDivergenceText, replayFullStateHash, replayInfo, replayLogEventsFrom, replayPlayOutputs,
  replayRecordFinish, replayRecordLog,
} from '../core/replay/index.ts';
import { charBackendCreate } from '../core/char/index.ts';
import type { ChardevIo } from '../core/host/index.ts';
import { icountGetRaw } from '../core/loop/index.ts';
import type { TraceRecord } from '../core/trace/index.ts';
import type { MonitorSet, Monitor } from './monitor.ts';
import { errorReport, monitorPrintf } from './monitor.ts';
import { type HmpArgs, type HmpCommand, hmpRegisterCommands } from './hmp-commands.ts';
import { handleHmpCommand, hmpMonitorCreate } from './hmp.ts';
import { type QmpCommand, type QmpResult, QMP_OK, qmpDispatchPrepare, qmpDispatchRun, qmpFail, qmpRegisterCommands } from './qmp-dispatch.ts';
import { T_INT, argInt } from './qapi-visit.ts';
import { type QObject, qdictFrom, qnumInt, qobjectFromPlain, utf8ToBytes } from './qobject.ts';
import { qobjectToJson } from './json-writer.ts';
import { QmpCommandError } from './qmp-client.ts';

const ERR_BREAK_MODE = 'setting the breakpoint is allowed only in play mode';
const ERR_DELETE_MODE = 'replay breakpoints are allowed only in play mode';
const ERR_SEEK_MODE = 'replay must be enabled to seek';
const ERR_BREAK_PAST = 'cannot set breakpoint at the instruction in the past';
const ERR_SEEK = 'cannot seek to the specified instruction count';

function machineOf(mons: MonitorSet): ReplayMachine {
  return mons.m as ReplayMachine;
}

/** The debugger when the command runs in play view, else null. */
function playDebugger(mons: MonitorSet): ReplayDebugger | null {
  const rt = machineOf(mons).replay;
  return rt && rt.view === 'play' ? rt.debugger : null;
}

/** The last instruction count a seek can reach. */
function lastIcount(d: ReplayDebugger): number {
  return d.index.end?.icount ?? d.index.lastIcount;
}

/** @qemu replay/replay-debugging.c qmp_replay_break */
export function qmpReplayBreak(mons: MonitorSet, icount: bigint): QmpResult {
  const d = playDebugger(mons);
  if (!d) return qmpFail(ERR_BREAK_MODE);
  if (icount < BigInt(replayDebuggerIcount(d))) return qmpFail(ERR_BREAK_PAST);
  d.pending.push({ kind: 'break', icount: Number(icount) });
  return QMP_OK;
}

/** @qemu replay/replay-debugging.c qmp_replay_delete_break */
export function qmpReplayDeleteBreak(mons: MonitorSet, icount: bigint | undefined): QmpResult {
  const d = playDebugger(mons);
  if (!d) return qmpFail(ERR_DELETE_MODE);
  d.pending.push({ kind: 'delete', icount: icount === undefined ? null : Number(icount) });
  return QMP_OK;
}

/** @qemu replay/replay-debugging.c qmp_replay_seek */
export function qmpReplaySeek(mons: MonitorSet, icount: bigint): QmpResult {
  const d = playDebugger(mons);
  if (!d) return qmpFail(ERR_SEEK_MODE);
  if (icount < 0n || icount > BigInt(lastIcount(d))) return qmpFail(ERR_SEEK);
  d.pending.push({ kind: 'seek', icount: Number(icount) });
  return QMP_OK;
}

/** @qemu replay/replay-debugging.c qmp_query_replay */
export function qmpQueryReplay(mons: MonitorSet): QObject {
  const info = replayInfo(machineOf(mons));
  const mode = info.view === 'none' ? 'none' : info.view === 'record' ? 'record' : 'play';
  const entries: [string, QObject][] = [['mode', mode]];
  if (info.view !== 'none') entries.push(['filename', utf8ToBytes(info.filename)]);
  entries.push(['icount', qnumInt(info.icount)]);
  return qdictFrom(entries);
}

function hmpResult(mons: MonitorSet, r: QmpResult): void {
  // replay-debugging.c's HMP handlers print errors with error_report_err: no "Error: " prefix.
  if (!r.ok) errorReport(mons, r.error.desc);
}

function icountArg(a: HmpArgs): bigint {
  const v = a.get('icount');
  return typeof v === 'bigint' ? v : BigInt(Number(v ?? 0));
}

/** @qemu monitor/hmp-cmds.c hmp_info_replay */
function hmpInfoReplay(mons: MonitorSet, mon: Monitor): void {
  const info = replayInfo(machineOf(mons));
  if (info.view === 'none') {
    monitorPrintf(mons, mon, 'Record/replay is not active\n');
    return;
  }
  const what = info.view === 'record' ? 'Recording' : 'Replaying';
  monitorPrintf(mons, mon, `${what} execution '${info.filename}': instruction count = ${info.icount}\n`);
}

export const HMP_REPLAY_COMMANDS: readonly HmpCommand[] = [
  { name: 'replay_break', argsType: 'icount:l', params: 'icount', help: 'set breakpoint at the specified instruction count',
    cmd: (mons, _mon, a) => hmpResult(mons, qmpReplayBreak(mons, icountArg(a))) },
  { name: 'replay_delete_break', argsType: '', params: '', help: 'remove replay breakpoint',
    cmd: (mons) => hmpResult(mons, qmpReplayDeleteBreak(mons, undefined)) },
  { name: 'replay_seek', argsType: 'icount:l', params: 'icount', help: 'replay execution to the specified instruction count',
    cmd: (mons, _mon, a) => hmpResult(mons, qmpReplaySeek(mons, icountArg(a))) },
];

export const HMP_REPLAY_INFO_COMMANDS: readonly HmpCommand[] = [
  { name: 'replay', argsType: '', params: '', help: 'show record/replay information', cmd: (mons, mon) => hmpInfoReplay(mons, mon) },
];

export const QMP_REPLAY_COMMANDS: readonly QmpCommand[] = [
  { name: 'query-replay', args: [], fn: (mons) => ({ ok: true, value: qmpQueryReplay(mons) }) },
  { name: 'replay-break', args: [{ name: 'icount', type: T_INT }], fn: (mons, _mon, a) => qmpReplayBreak(mons, argInt(a, 'icount')!) },
  {
    name: 'replay-delete-break', args: [{ name: 'icount', type: T_INT, optional: true }],
    fn: (mons, _mon, a) => qmpReplayDeleteBreak(mons, argInt(a, 'icount')),
  },
  { name: 'replay-seek', args: [{ name: 'icount', type: T_INT }], fn: (mons, _mon, a) => qmpReplaySeek(mons, argInt(a, 'icount')!) },
];

/** Add the record/replay commands to a monitor set (every machine has them, as QEMU does). */
export function replayRegisterCommands(mons: MonitorSet): void {
  hmpRegisterCommands(mons, 'main', HMP_REPLAY_COMMANDS);
  hmpRegisterCommands(mons, 'info', HMP_REPLAY_INFO_COMMANDS);
  qmpRegisterCommands(mons, QMP_REPLAY_COMMANDS);
}

/** Run `fn` in play view, isolated, then the debugger actions it queued. */
function outOfBand<T>(mons: MonitorSet, d: ReplayDebugger, fn: () => T): { value: T; errors: string[] } {
  const rt = machineOf(mons).replay!;
  const value = replayDebuggerIsolated(d, () => {
    rt.view = 'play';
    return fn();
  });
  return { value, errors: replayDebuggerRunPending(d) };
}

/**
 * Run an HMP command line on the debugger's monitor (play mode, out of band). Returns its
 * output; errors of the debugger actions are appended as error_report lines.
 */
export function replayDebugHmp(mons: MonitorSet, d: ReplayDebugger, line: string): string {
  const r = outOfBand(mons, d, () => {
    const mon = hmpMonitorCreate(mons, charBackendCreate(), false, true);
    handleHmpCommand(mons, mon, line);
    return mon.outbuf;
  });
  return r.value + r.errors.map((e) => `${e}\n`).join('');
}

/**
 * Run a QMP command on the debugger's monitor (play mode, out of band). Returns its `return`
 * value as plain data, or throws QmpCommandError.
 */
export function replayDebugQmp(mons: MonitorSet, d: ReplayDebugger, command: string, args?: Record<string, unknown>): unknown {
  const r = outOfBand(mons, d, () => {
    const req = qobjectFromPlain(args === undefined ? { execute: command } : { execute: command, arguments: args });
    const plan = qmpDispatchPrepare(mons, mons.qmpCommands, req, false);
    const mon = hmpMonitorCreate(mons, charBackendCreate(), false, true);
    const rsp = plan.kind === 'run' ? qmpDispatchRun(mons, mon, plan) : plan.rsp;
    return JSON.parse(qobjectToJson(rsp)) as { return?: unknown; error?: { class: string; desc: string } };
  });
  if (r.value.error) throw new QmpCommandError(r.value.error.class, r.value.error.desc);
  if (r.errors.length > 0) throw new QmpCommandError('GenericError', r.errors[0]!);
  return r.value.return;
}

/** Where a replaying machine is, for status lines. */
export interface ReplayStatus {
  mode: 'record' | 'play';
  filename: string;
  iteration: number;
  icount: number;
  /** Stopped inside an iteration at an exact instruction count (after a seek or breakpoint). */
  frozen: boolean;
  /** The log's END was reached. */
  ended: boolean;
  /** The log stops without an END (an interrupted recording) and the replay reached its end. */
  truncated: boolean;
  /** Instruction count at the end of the log. */
  lastIcount: number;
  lastIteration: number;
  breakpoints: number[];
  snapshots: number;
  snapshotBytes: number;
  divergence: string | null;
}

/**
 * The library's handle on record/replay (`vm.replay`). Record: the log. Play: stepping, running,
 * seeking and breakpoints, and the debugger's monitor.
 */
export interface ReplayHandle {
  readonly mode: 'record' | 'play';
  readonly header: ReplayHeader;
  /** Record: the log written so far (in-memory recordings only). */
  log(): Uint8Array;
  /** Record: end the recording (END event, flush). vm.close() does it too. */
  finish(): void;
  /** Play: one main-loop iteration (from a frozen state, the rest of its iteration). */
  step(): { records: TraceRecord[]; stop: ReplayStop | null };
  /** Play: run to a condition, a breakpoint, the end of the log or a divergence. */
  run(opts?: ReplayRunOptions): { stop: ReplayStop; icount: number };
  /** Play: stop exactly at `icount` (backwards or forwards). Null, or QEMU's error text. */
  seek(icount: number): string | null;
  /** Play: a breakpoint; persistent ones survive being hit. Null, or QEMU's error text. */
  break(icount: number, persistent?: boolean): string | null;
  deleteBreak(icount?: number): void;
  status(): ReplayStatus;
  /** Play: the first divergence as a report, or null. */
  divergence(): string | null;
  /** Play: what the machine wrote to each host descriptor. */
  output(): PlayOutput[];
  /** The full state hash now (vCPUs, devices, clocks, RAM). */
  stateHash(): string;
  /** Play: an HMP command on the debugger's monitor (out of band). */
  hmp(line: string): string;
  /** Play: a QMP command on the debugger's monitor (out of band). */
  qmp(command: string, args?: Record<string, unknown>): unknown;
  /** Play: the next `max` events of the log, described. */
  upcoming(max: number): string[];
  /** Play: the debugger (tests, the stepper). */
  debugger(): ReplayDebugger;
}

function onlyPlay(): never {
  throw new Error('this machine records; stepping, seeking and breakpoints need a replay');
}

/** The handle of a recording machine. */
export function replayHandleRecord(rec: RecordEngine, m: ReplayMachine): ReplayHandle {
  return {
    mode: 'record', header: rec.header,
    log: () => replayRecordLog(rec),
    finish: () => replayRecordFinish(rec, 'finished by the library'),
    step: onlyPlay, run: onlyPlay, seek: onlyPlay, break: onlyPlay, deleteBreak: onlyPlay, divergence: () => null,
    output: () => [], hmp: onlyPlay, qmp: onlyPlay, upcoming: onlyPlay, debugger: onlyPlay,
    stateHash: () => replayFullStateHash(m),
    status: () => ({
      mode: 'record', filename: rec.header.filename, iteration: m.loop.iteration, icount: icountGetRaw(m.clocks),
      frozen: false, ended: rec.finished, truncated: false, lastIcount: icountGetRaw(m.clocks), lastIteration: m.loop.iteration,
      breakpoints: [], snapshots: 0, snapshotBytes: 0, divergence: null,
    }),
  };
}

/** The handle of a replaying machine. */
export function replayHandlePlay(d: ReplayDebugger, mons: MonitorSet, io: () => ChardevIo | null): ReplayHandle {
  const p = d.p;
  const m = d.m;
  return {
    mode: 'play', header: p.header,
    log: () => p.log,
    finish: () => {},
    step: () => replayDebuggerStep(d),
    run: (opts) => replayDebuggerRun(d, opts),
    seek: (icount) => replayDebuggerSeek(d, icount),
    break: (icount, persistent) => replayDebuggerBreak(d, icount, persistent ?? false),
    deleteBreak: (icount) => replayDebuggerDeleteBreak(d, icount),
    divergence: () => (p.divergence ? replayDivergenceText(p.divergence) : null),
    output: () => {
      const x = io();
      return x ? replayPlayOutputs(x) : [];
    },
    stateHash: () => replayFullStateHash(m),
    hmp: (line) => replayDebugHmp(mons, d, line),
    qmp: (command, args) => replayDebugQmp(mons, d, command, args),
    upcoming: (max) => replayLogEventsFrom(p.log, p.rt.cursor, max).map(logEventDescribe),
    debugger: () => d,
    status: () => {
      const st = replayDebuggerStats(d);
      return {
        mode: 'play', filename: p.name, iteration: m.loop.iteration, icount: replayDebuggerIcount(d),
        frozen: d.frozen !== null, ended: p.rt.ended, truncated: p.truncated && !p.rt.ended,
        lastIcount: d.index.end?.icount ?? d.index.lastIcount, lastIteration: d.index.end?.iteration ?? d.index.lastIteration,
        breakpoints: d.breakpoints.map((b) => b.icount).sort((a, b) => a - b), snapshots: st.snapshots,
        snapshotBytes: st.costBytes, divergence: p.divergence ? replayDivergenceText(p.divergence) : null,
      };
    },
  };
}
