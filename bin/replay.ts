// `detvm replay FILE`: replays a record/replay log (core/replay, FORMAT.md) in virtual time. By
// default an interactive stepper on the terminal (readline): next main-loop iteration, step into
// a vCPU slice, instruction steps, continue to a breakpoint, an instruction count or the next
// trace event of a name, seek backwards or forwards, the call tree of the current step, and
// info-style state through an out-of-band HMP monitor. `--export jsonl|tree|chrome` replays the
// whole log and writes its trace; `--check` replays it and reports the first divergence. Also the
// replay side of the QEMU-style command line (-icount rr=replay,rrfile=F). Async code: bin/ only.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as readline from 'node:readline';
import {
  createMachine, type DetvmMachine, type MachineConfig, type TraceRecord, ConfigError, ReplayRefusedError,
  machineConfigFromLog,
} from '../index.ts';
import { charState } from '../core/char/index.ts';
import type { HostIo } from '../core/host/index.ts';
import { type ReplayHeader, replayApplyGap, replayHeaderDecode, replayStartupPending, replayDebuggerNextSliceEnd } from '../core/replay/index.ts';
import { exportCallTree, exportChromeTrace, exportJsonLines, traceRecordsSince } from '../core/trace/index.ts';
import { chardevWaitStartup } from '../chardev/index.ts';

/** Where the stepper reads commands and writes its output. */
export interface ReplayCliIo {
  out(s: string): void;
  err(s: string): void;
  /** Command input (the terminal, or a script); null: no interactive session possible. */
  input: NodeJS.ReadableStream | null;
  /** Show a prompt (a terminal). */
  prompt: boolean;
  /** Progress of a replay to the end: iterations done of the log's (bin/progress.ts draws it). */
  progress?: (done: number, total: number) => void;
}

/** Main-loop iterations a replay to the end runs between two progress reports. */
const PROGRESS_CHUNK_ITERATIONS = 2000;

const USAGE = `usage: detvm replay FILE [options]
  --export jsonl|tree|chrome   replay the whole log and write its trace (to --out FILE or stdout)
  --out FILE                   where --export writes
  --check                      replay the whole log; report the first divergence (exit status 1)
  --outputs DIR                with --check or --export: write what the replay sent to each host
                               descriptor (monitor sockets, stdio, files) to DIR, one file each
  --kernel FILE                the guest image, if it moved since the recording
  --trace LEVEL                trace level of the replay (default: the recording's, at least 1)
  --allow-other-version        replay a log written by another detvm version
Without --export or --check: an interactive stepper (type help).
`;

const HELP = `commands:
  n, next [N]          run N main-loop iterations (default 1)
  s, slice             run to the end of the next vCPU slice (stops inside its iteration)
  si, stepi [N]        run N instructions (default 1)
  c, continue          run to the next breakpoint or the end of the log
  until NAME           run until an iteration with a trace event named NAME
  until icount N       run to instruction count N (same as seek N when N is ahead)
  seek N               go to instruction count N, backwards or forwards
  b, break N           breakpoint at instruction count N (any number of them)
  d, delete [N]        delete breakpoint N, or all
  breaks               list breakpoints
  tree                 call tree of the current step
  status, where        position, log end, snapshots, divergence
  events [N]           the next N events of the log (default 5)
  info WHAT, hmp LINE  an HMP command on the debugger's monitor (info registers, info replay...)
  export FMT FILE      write the trace so far (jsonl, tree or chrome)
  q, quit              leave
`;

interface Options {
  file: string;
  export: 'jsonl' | 'tree' | 'chrome' | null;
  out: string | null;
  check: boolean;
  outputs: string | null;
  kernel: string | undefined;
  trace: number | null;
  allowOther: boolean;
}

function parseArgs(argv: readonly string[]): Options | string {
  const o: Options = { file: '', export: null, out: null, check: false, outputs: null, kernel: undefined, trace: null, allowOther: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string | undefined => argv[++i];
    if (a === '--export') {
      const f = next();
      if (f !== 'jsonl' && f !== 'tree' && f !== 'chrome') return `--export: '${f ?? ''}' is not jsonl, tree or chrome`;
      o.export = f;
    } else if (a === '--out') o.out = next() ?? null;
    else if (a === '--check') o.check = true;
    else if (a === '--outputs') o.outputs = next() ?? null;
    else if (a === '--kernel') o.kernel = next();
    else if (a === '--trace') {
      const v = next() ?? '';
      if (!/^[012]$/.test(v)) return `--trace: level '${v}' is not 0, 1 or 2`;
      o.trace = Number(v);
    } else if (a === '--allow-other-version') o.allowOther = true;
    else if (a.startsWith('-')) return `${a}: invalid option`;
    else if (o.file === '') o.file = a;
    else return `${a}: only one log file`;
  }
  return o.file === '' ? 'no log file given' : o;
}

/**
 * Replay the start-up a live recording went through (listeners settling, a wait=on server's first
 * client): the chardevs' start-up code runs as in bin/live.ts, and each host event of the log's
 * start-up is applied when that code waits, as the host delivered it. Returns QEMU's error text.
 */
export async function replayLiveStartup(vm: DetvmMachine): Promise<string | null> {
  if (!vm.replay || vm.replay.header.mode !== 'live') return null;
  const p = vm.replay.debugger().p;
  const io = charState(vm.kernel).io!;
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  p.hooks.onArrive = wake;
  const hostIo = {
    ...io, kind: 'host', wake, yieldNow: () => Promise.resolve(), close: () => {},
    waitEvent: () => (vm.kernel.fdt.arrived.length > 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
  } as unknown as HostIo;
  let result: string | null | undefined;
  void (async () => {
    for (const chr of [...charState(vm.kernel).chardevs.values()]) {
      const e = await chardevWaitStartup(hostIo, chr);
      if (e) return e;
    }
    return null;
  })().then((r) => {
    result = r;
  });
  try {
    for (let i = 0; i < 1_000_000; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (result !== undefined) return result;
      if (!replayStartupPending(p)) return 'the start-up waits for a host event that the log does not have';
      replayApplyGap(p, true);
    }
    return 'the start-up did not finish';
  } finally {
    p.hooks.onArrive = null;
  }
}

/**
 * Print what the guest writes to its console (a capture or stdio serial) the first time the
 * replay runs it; seeks that run a part again stay quiet.
 */
function showGuestOutput(vm: DetvmMachine, cli: ReplayCliIo): void {
  const d = vm.replay!.debugger();
  const fresh = (): boolean => vm.kernel.loop.iteration > d.timeline.doneIter;
  d.p.hooks.output = (name, data) => {
    if (name === 'stdio-out' && fresh()) cli.out(Buffer.from(data).toString('latin1'));
  };
  vm.events.on('console', (t) => {
    if (fresh()) cli.out(t);
  });
}

/** Create the replaying machine of `o` and replay its start-up. */
async function open(o: Options, cli: ReplayCliIo, onRecordOut: boolean): Promise<DetvmMachine> {
  const bytes = readFileSync(o.file);
  const { header } = replayHeaderDecode(bytes, o.file);
  const cfg: MachineConfig = machineConfigFromLog(header, bytes, o.kernel);
  const level = (o.trace ?? Math.max(1, header.traceLevel)) as 0 | 1 | 2;
  cfg.trace = level;
  cfg.retainTrace = level > 0;
  cfg.report = (line) => cli.err(lineOf(line));
  cfg.replay = { log: bytes, name: header.filename, allowOtherVersion: o.allowOther };
  const vm = createMachine(cfg);
  if (onRecordOut) showGuestOutput(vm, cli);
  const err = await replayLiveStartup(vm);
  if (err) throw new Error(err);
  return vm;
}

function exportText(format: 'jsonl' | 'tree' | 'chrome', recs: readonly TraceRecord[]): string {
  return format === 'jsonl' ? exportJsonLines(recs) : format === 'tree' ? exportCallTree(recs) : exportChromeTrace(recs);
}

/** A report as one line on stderr, as bin/main.ts prints them (some come with their newline). */
function lineOf(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Replay to the end; the status text and whether it matched the recording. */
function runToEnd(vm: DetvmMachine, file: string, progress?: (done: number, total: number) => void): { ok: boolean; text: string } {
  let r = progress ? { stop: 'iteration' } : vm.replay!.run();
  // With a progress report: the same run, in chunks of iterations.
  while (progress && r.stop === 'iteration') {
    const at = vm.replay!.status();
    progress(at.iteration, at.lastIteration);
    r = vm.replay!.run({ untilIteration: at.iteration + PROGRESS_CHUNK_ITERATIONS });
  }
  const st = vm.replay!.status();
  if (st.divergence) return { ok: false, text: `${st.divergence}\n` };
  const end = r.stop === 'end' ? 'the end of the recording' : `${r.stop} (the log stops without an end marker: the recording was interrupted)`;
  return {
    ok: r.stop === 'end' || r.stop === 'truncated',
    text: `replayed ${file} to ${end}: ${st.iteration} iterations, icount ${st.icount}, trace hash ${vm.trace.hash()}; it matches the recording\n`,
  };
}

/**
 * Write each host descriptor's bytes to `dir`: the file name is the descriptor's name with
 * characters other than letters, digits, '.', '_' and '-' turned into '_' (names that collide
 * get their order appended).
 */
function writeOutputs(vm: DetvmMachine, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const used = new Set<string>();
  for (const o of vm.replay!.output()) {
    let name = o.name.replace(/[^A-Za-z0-9._-]/g, '_') || 'fd';
    for (let i = 2; used.has(name); i++) name = `${name}.${i}`;
    used.add(name);
    writeFileSync(join(dir, name), Buffer.from(o.text, 'latin1'));
  }
}

/** `detvm replay FILE [options]`; returns the exit status. */
export async function replayMain(argv: readonly string[], cli: ReplayCliIo): Promise<number> {
  const o = parseArgs(argv);
  if (typeof o === 'string') {
    cli.err(`detvm replay: ${o}\n${USAGE}`);
    return 1;
  }
  let vm: DetvmMachine;
  try {
    vm = await open(o, cli, o.export === null && !o.check);
  } catch (e) {
    const msg = e instanceof ReplayRefusedError || e instanceof ConfigError || e instanceof Error ? e.message : String(e);
    cli.err(`detvm replay: ${msg}\n`);
    return 1;
  }
  if (o.export !== null || o.check) {
    const r = runToEnd(vm, o.file, cli.progress);
    if (o.export !== null) {
      const text = exportText(o.export, vm.trace.records());
      if (o.out) writeFileSync(o.out, text);
      else cli.out(text);
    }
    if (o.check || !r.ok) cli.err(r.text);
    if (o.outputs !== null) writeOutputs(vm, o.outputs);
    return r.ok ? 0 : 1;
  }
  if (!cli.input) {
    cli.err('detvm replay: no terminal for the stepper (use --export or --check)\n');
    return 1;
  }
  return stepper(vm, o.file, cli);
}

/**
 * The QEMU-style command line with -icount rr=replay: replay to the end, outputs shown. `after`
 * runs on the machine once the replay is over (the -dtrace-file export).
 */
export async function replayRunConfig(config: MachineConfig, cli: ReplayCliIo, after?: (vm: DetvmMachine) => void): Promise<number> {
  let vm: DetvmMachine;
  try {
    vm = createMachine({ ...config, report: (l) => cli.err(lineOf(l)) });
    showGuestOutput(vm, cli);
    const err = await replayLiveStartup(vm);
    if (err) throw new Error(err);
  } catch (e) {
    cli.err(`detvm: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const r = runToEnd(vm, typeof config.replay!.log === 'string' ? config.replay!.log : 'the log', cli.progress);
  if (!r.ok) cli.err(r.text);
  // qemu_cleanup, as after the recorded run: its trace records follow the replayed ones.
  vm.close();
  after?.(vm);
  return r.ok ? vm.exitStatus() ?? 0 : 1;
}

function describeStop(vm: DetvmMachine, what: string): string {
  const st = vm.replay!.status();
  const at = `iteration ${st.iteration}, icount ${st.icount}${st.frozen ? ' (inside the iteration)' : ''}`;
  const next = vm.replay!.upcoming(1)[0] ?? (st.ended ? 'end of the recording' : 'nothing');
  const div = st.divergence ? `\n${st.divergence}` : '';
  return `${what}: ${at}; next log event: ${next}${div}\n`;
}

/** One stepper command; returns false to leave. */
function stepperCommand(vm: DetvmMachine, line: string, cli: ReplayCliIo, state: { step: TraceRecord[]; stepSeq: number }): boolean {
  const h = vm.replay!;
  const [cmd = '', ...rest] = line.trim().split(/\s+/);
  const num = (i: number, dflt: number): number => {
    const v = rest[i];
    return v === undefined ? dflt : Number(v);
  };
  const mark = (): void => {
    state.stepSeq = vm.kernel.trace.seq;
  };
  switch (cmd) {
    case '': return true;
    case 'help': case 'h': case '?': cli.out(HELP); return true;
    case 'q': case 'quit': case 'exit': return false;
    case 'n': case 'next': {
      let stop: string | null = null;
      const n = num(0, 1);
      for (let i = 0; i < n && stop === null; i++) {
        mark();
        const r = h.step();
        state.step = r.records;
        stop = r.stop;
      }
      cli.out(describeStop(vm, stop ?? `${state.step.length} trace records`));
      return true;
    }
    case 's': case 'slice': {
      mark();
      const end = replayDebuggerNextSliceEnd(h.debugger());
      const err = end === null ? 'no vCPU slice left in the log' : h.seek(end);
      cli.out(err ? `${err}\n` : describeStop(vm, 'end of the slice'));
      return true;
    }
    case 'si': case 'stepi': {
      const err = h.seek(h.status().icount + num(0, 1));
      cli.out(err ? `${err}\n` : describeStop(vm, 'stepped'));
      return true;
    }
    case 'c': case 'continue': {
      mark();
      const r = h.run();
      cli.out(describeStop(vm, r.stop));
      return true;
    }
    case 'until': {
      mark();
      const r = rest[0] === 'icount' ? h.run({ untilIcount: num(1, 0) }) : h.run({ untilEvent: rest[0] ?? '' });
      cli.out(describeStop(vm, r.stop));
      return true;
    }
    case 'seek': case 'goto': {
      const err = h.seek(num(0, 0));
      cli.out(err ? `${err}\n` : describeStop(vm, 'at'));
      return true;
    }
    case 'b': case 'break': {
      const err = h.break(num(0, 0), true);
      cli.out(err ? `${err}\n` : `breakpoint at icount ${num(0, 0)}\n`);
      return true;
    }
    case 'd': case 'delete': h.deleteBreak(rest[0] === undefined ? undefined : num(0, 0)); return true;
    case 'breaks': cli.out(`${h.status().breakpoints.join(' ') || '(none)'}\n`); return true;
    case 'tree': cli.out(exportCallTree(traceRecordsSince(vm.kernel.trace, state.stepSeq)) || '(no trace records in this step)\n'); return true;
    case 'status': case 'where': {
      const st = h.status();
      cli.out(`${describeStop(vm, 'at')}log: ${st.lastIteration} iterations, icount ${st.lastIcount}; snapshots ${st.snapshots} (${(st.snapshotBytes / 1048576).toFixed(1)} MiB); breakpoints ${st.breakpoints.join(' ') || 'none'}\n`);
      return true;
    }
    case 'events': cli.out(h.upcoming(num(0, 5)).map((e) => `  ${e}\n`).join('') || '  (end of the log)\n'); return true;
    case 'info': cli.out(h.hmp(line.trim())); return true;
    case 'hmp': cli.out(h.hmp(rest.join(' '))); return true;
    case 'export': {
      const f = rest[0];
      if ((f !== 'jsonl' && f !== 'tree' && f !== 'chrome') || !rest[1]) {
        cli.out('usage: export jsonl|tree|chrome FILE\n');
        return true;
      }
      writeFileSync(rest[1], exportText(f, vm.trace.records()));
      cli.out(`wrote ${vm.trace.records().length} records to ${rest[1]}\n`);
      return true;
    }
    default:
      cli.out(`unknown command '${cmd}' (help lists them)\n`);
      return true;
  }
}

async function stepper(vm: DetvmMachine, file: string, cli: ReplayCliIo): Promise<number> {
  const st = vm.replay!.status();
  cli.out(`detvm replay ${file}: recorded by detvm ${vm.replay!.header.detvm} (${vm.replay!.header.mode} mode), ${st.lastIteration} iterations, icount ${st.lastIcount}. help lists the commands.\n`);
  const rl = readline.createInterface({ input: cli.input!, terminal: false });
  const state = { step: [] as TraceRecord[], stepSeq: vm.kernel.trace.seq };
  if (cli.prompt) cli.out('(replay) ');
  for await (const line of rl) {
    let go: boolean;
    try {
      go = stepperCommand(vm, line, cli, state);
    } catch (e) {
      cli.out(`error: ${e instanceof Error ? e.message : String(e)}\n`);
      go = true;
    }
    if (!go) break;
    if (cli.prompt) cli.out('(replay) ');
  }
  rl.close();
  return 0;
}

/** The header of a log file (for bin/main.ts messages). */
export function replayReadHeader(file: string): ReplayHeader {
  return replayHeaderDecode(readFileSync(file), file).header;
}
