// Replaying a log (DESIGN.md §6): the machine runs with the log as its only outside world. Before
// each iteration the gap events recorded after the previous one are re-applied (bytes queued as
// if they had just arrived, descriptors opened, listeners settled, signals raised); inside the
// iteration the host calls and clock reads are answered from the log in order. After each step a
// logged checkpoint is compared with the replay's own hashes. The first disagreement is kept as a
// divergence with the context of both sides; replay stops there.

import {
  type HostClockSource, type HostInput, hostInputAt, hostInputQueue, icountGetRaw,
} from '../loop/index.ts';
import { qemuSystemKilled } from '../system/index.ts';
import { traceHash } from '../trace/index.ts';
import { LogCorruptError } from './log-codec.ts';
import {
  type LogCursor, type LogEvent, logCursorCreate, logCursorSet, logEventDescribe, logEventIsGap, logEventRead,
} from './log-events.ts';
import type { ReplayHeader } from './log-header.ts';
import { type LogIndex, replayLogScan } from './log-index.ts';
import {
  type ReplayMachine, type ReplayRuntime, replayOutputHash, replayRuntimeCreate, replayWrapOutputs,
} from './replay-state.ts';
import { replayCheckpointHash, replayFullStateHash } from './state-hash.ts';

/** Where a replay stopped agreeing with its log. */
export interface ReplayDivergence {
  message: string;
  iteration: number;
  icount: number;
  /** The log's side: the events around the position. */
  log: string[];
  /** The replay's side: where it is and what it did last. */
  replay: string[];
}

/** Callbacks of the layers above (chardev library input, start-up wake-ups). */
export interface PlayHooks {
  /** Deliver library input to chardev `label` (libraryChardevSend). */
  chrSend: ((label: string, data: Uint8Array) => void) | null;
  /** A host arrival was queued (the start-up driver wakes its waiters). */
  onArrive: (() => void) | null;
  /** Open a descriptor for a gap event; set by the replay I/O (play-io.ts). */
  openFd: ((e: Extract<LogEvent, { k: 'fd-open' }>) => void) | null;
  settle: ((e: Extract<LogEvent, { k: 'settled' }>) => void) | null;
  connector: ((e: Extract<LogEvent, { k: 'connector' }>) => void) | null;
  stdioSignal: ((sig: 'SIGINT' | 'SIGQUIT') => void) | null;
  /** What the kernel writes to a host descriptor (the stepper shows it; null: kept only). */
  output: ((fdName: string, data: Uint8Array) => void) | null;
}

/** The replay engine: the log and what reading it needs. Not part of machine snapshots. */
export interface PlayEngine {
  rt: ReplayRuntime;
  m: ReplayMachine | null;
  log: Uint8Array;
  header: ReplayHeader;
  name: string;
  /** The decoded event at `headPos`, and the cursor after it. */
  headPos: number;
  head: LogEvent | null;
  headNext: LogCursor | null;
  divergence: ReplayDivergence | null;
  /** The last events consumed, newest last (divergence context; described only when reported). */
  recent: LogEvent[];
  /** The last inputs (gap events) consumed, newest last: what most likely led to a divergence. */
  recentInputs: LogEvent[];
  hooks: PlayHooks;
  /** The log ended without an END event (an interrupted recording). */
  truncated: boolean;
  /** Virtual mode: the output-hashing writers installed (replayWrapOutputs). */
  wrappers: WeakSet<object>;
  /** The whole log, scanned once: its end, or where an interrupted recording stops. */
  index: LogIndex;
}

const RECENT_MAX = 6;
const RECENT_INPUTS_MAX = 3;

export function replayPlayCreate(log: Uint8Array, header: ReplayHeader, eventsAt: number, name: string): PlayEngine {
  const rt = replayRuntimeCreate('play', header.filename, eventsAt);
  rt.playFilename = name;
  return {
    rt, m: null, log, header, name, headPos: -1, head: null, headNext: null, divergence: null, recent: [], recentInputs: [],
    hooks: { chrSend: null, onArrive: null, openFd: null, settle: null, connector: null, stdioSignal: null, output: null },
    truncated: false, wrappers: new WeakSet(), index: replayLogScan(log, eventsAt),
  };
}

/** The next event without consuming it; null at the end of the bytes. */
export function playPeek(p: PlayEngine): LogEvent | null {
  const cur = p.rt.cursor;
  if (p.headPos === cur.pos && p.headNext !== null) return p.head;
  // One cursor object serves every peek: it is only read back for the event it was filled for.
  const next = p.headNext ?? logCursorCreate(0);
  logCursorSet(next, cur);
  let e: LogEvent | null;
  try {
    e = logEventRead(p.log, next);
  } catch (err) {
    if (!(err instanceof LogCorruptError)) throw err;
    if (!err.atEnd) playDiverge(p, err.message);
    e = null;
  }
  if (e === null) p.truncated = true;
  p.headPos = cur.pos;
  p.head = e;
  p.headNext = next;
  return e;
}

/** Consume the event returned by the last playPeek. */
export function playAdvance(p: PlayEngine): void {
  const e = playPeek(p);
  if (e === null || p.headNext === null) return;
  logCursorSet(p.rt.cursor, p.headNext);
  p.recent.push(e);
  if (p.recent.length > RECENT_MAX) p.recent.shift();
  if (logEventIsGap(e)) {
    p.recentInputs.push(e);
    if (p.recentInputs.length > RECENT_INPUTS_MAX) p.recentInputs.shift();
  }
}

/** Context lines of the log's side: the last inputs, recent events, then the next few. */
function logContext(p: PlayEngine): string[] {
  const out = p.recentInputs.filter((e) => !p.recent.includes(e)).map((e) => `  last input: ${logEventDescribe(e)}`);
  for (const e of p.recent) out.push(`  consumed: ${logEventDescribe(e)}`);
  const c: LogCursor = { ...p.rt.cursor };
  for (let i = 0; i < 3; i++) {
    let e: LogEvent | null = null;
    try {
      e = logEventRead(p.log, c);
    } catch {
      break;
    }
    if (e === null) {
      out.push('  next: (end of the log bytes)');
      break;
    }
    out.push(`  next: ${logEventDescribe(e)}`);
  }
  return out;
}

function replayContext(p: PlayEngine): string[] {
  const m = p.m;
  if (!m) return ['  (machine not created yet)'];
  const out = [`  at iteration ${m.loop.iteration}, icount ${icountGetRaw(m.clocks)}, trace seq ${m.trace.seq} hash ${traceHash(m.trace)}`];
  const recs = m.trace.records;
  if (recs && recs.length > 0) {
    for (const r of recs.slice(-5)) out.push(`  trace #${r.seq} ${r.kind} ${r.name}${r.args ? ` ${JSON.stringify(r.args)}` : ''}`);
  } else {
    out.push('  (no trace records retained: replay with a trace level for the events)');
  }
  return out;
}

/** Keep the first divergence (later ones are consequences). */
export function playDiverge(p: PlayEngine, message: string): void {
  if (p.divergence) return;
  const m = p.m;
  p.divergence = {
    message, iteration: m?.loop.iteration ?? 0, icount: m ? icountGetRaw(m.clocks) : 0,
    log: logContext(p), replay: replayContext(p),
  };
}

/** The divergence report as text. */
export function replayDivergenceText(d: ReplayDivergence): string {
  return [`replay diverged at iteration ${d.iteration}, icount ${d.icount}: ${d.message}`, 'log side:', ...d.log, 'replay side:', ...d.replay].join('\n');
}

function describeHead(p: PlayEngine): string {
  const e = playPeek(p);
  return e ? logEventDescribe(e) : p.truncated ? 'the end of the log' : 'nothing';
}

/**
 * Consume the next event if it is a `kind` event of the current iteration that `match` accepts;
 * otherwise record a divergence (`what` describes the machine's action) and return null.
 */
export function playExpect<K extends LogEvent['k']>(
  p: PlayEngine, kind: K, what: string, match: (e: Extract<LogEvent, { k: K }>) => boolean,
): Extract<LogEvent, { k: K }> | null {
  const e = playPeek(p);
  const it = p.m?.loop.iteration ?? 0;
  if (e !== null && e.k === kind && e.iteration === it && match(e as Extract<LogEvent, { k: K }>)) {
    playAdvance(p);
    return e as Extract<LogEvent, { k: K }>;
  }
  playDiverge(p, `the machine ${what} in iteration ${it}, but the log's next event is ${describeHead(p)}`);
  return null;
}

type ClockEvent = Extract<LogEvent, { k: 'clock' }>;
const isMono = (x: ClockEvent): boolean => x.which === 'mono';
const isWall = (x: ClockEvent): boolean => x.which === 'wall';

/** The host clocks of a replay: the samples in the log. */
export function replayPlayClock(p: PlayEngine): HostClockSource {
  const c = p.rt.clock;
  const iteration = (): number => p.m?.loop.iteration ?? 0;
  return {
    baseSec: p.header.hostBaseSec,
    monotonicNs: () => {
      const it = iteration();
      if (c.monoIter === it) return c.mono;
      const e = playExpect(p, 'clock', 'read the host monotonic clock', isMono);
      if (e) c.mono = e.value;
      c.monoIter = it;
      return c.mono;
    },
    realtimeNs: () => {
      const it = iteration();
      if (c.wallIter === it) return c.wall;
      const e = playExpect(p, 'clock', 'read the host wall clock', isWall);
      if (e) c.wall = e.value;
      c.wallIter = it;
      return c.wall;
    },
  };
}

function queueArrival(p: PlayEngine, m: ReplayMachine, input: HostInput): void {
  hostInputQueue(m.fdt, input);
  p.hooks.onArrive?.();
}

/** Apply one gap event. */
function applyGap(p: PlayEngine, m: ReplayMachine, e: LogEvent): void {
  switch (e.k) {
    case 'arrive': return queueArrival(p, m, e.input);
    case 'fd-open': return void p.hooks.openFd?.(e);
    case 'settled': return void p.hooks.settle?.(e);
    case 'connector': return void p.hooks.connector?.(e);
    case 'signal': return qemuSystemKilled(m, e.signal, e.pid);
    case 'stdio-signal': return void p.hooks.stdioSignal?.(e.signal);
    case 'chr-send':
      if (!p.hooks.chrSend) return playDiverge(p, `the log sends input to chardev '${e.chardev}' but this machine cannot deliver library input`);
      return p.hooks.chrSend(e.chardev, e.data);
    case 'schedule': return hostInputAt(m.fdt, e.atNs, e.input);
    case 'horizon':
      m.loop.horizonNs = e.ns;
      return;
    case 'slice-cap':
      m.sys.maxSliceInsns = e.insns;
      return;
    default:
      return playDiverge(p, `internal: ${e.k} is not a gap event`);
  }
}

/**
 * Apply the gap events recorded after the last iteration (and consume the END event when the
 * recording stopped here). Returns whether the next event belongs to a later iteration, that is,
 * the machine may step. During start-up, `one` applies a single event (the driver lets the
 * start-up code react to each, as it did to the host).
 */
export function replayApplyGap(p: PlayEngine, one = false): boolean {
  const m = p.m;
  if (!m) return false;
  for (let i = 0; ; i++) {
    if (p.divergence || p.rt.ended) return false;
    const e = playPeek(p);
    if (e === null) return false; // an interrupted recording: replay stops where its log does
    if (e.iteration > m.loop.iteration) return true;
    if (e.k === 'end') {
      playAdvance(p);
      playCheckEnd(p, m, e);
      return false;
    }
    if (!logEventIsGap(e)) {
      playDiverge(p, `the log has ${logEventDescribe(e)}, which the replay never reached`);
      return false;
    }
    playAdvance(p);
    applyGap(p, m, e);
    if (one) return true;
    if (i > 10_000_000) throw new Error('replay: more than 10 million gap events in a row');
  }
}

/** The start-up still has a gap event of iteration 0 to apply. */
export function replayStartupPending(p: PlayEngine): boolean {
  const e = playPeek(p);
  return e !== null && e.iteration === 0 && logEventIsGap(e);
}

function playCheckEnd(p: PlayEngine, m: ReplayMachine, e: Extract<LogEvent, { k: 'end' }>): void {
  p.rt.ended = true;
  if (m.loop.exitStatus !== e.exit) {
    playDiverge(p, `the recording ended with exit status ${e.exit ?? '(running)'} but the replay has ${m.loop.exitStatus ?? '(running)'}`);
    return;
  }
  compareHashes(p, m, 'end of the recording', replayFullStateHash(m), e.state, e.trace, e.traceSeq, e.output);
}

function compareHashes(
  p: PlayEngine, m: ReplayMachine, what: string, state: string, logState: string, logTrace: string,
  logSeq: number, logOut: string,
): void {
  const out = replayOutputHash(p.rt);
  if (out !== logOut) {
    playDiverge(p, `output differs at the ${what}: the recording wrote bytes hashing to ${logOut}, the replay ${out} (${p.rt.out.bytes} bytes)`);
  } else if (m.trace.level === p.header.traceLevel && (m.trace.seq !== logSeq || traceHash(m.trace) !== logTrace)) {
    playDiverge(p, `trace differs at the ${what}: recording seq ${logSeq} hash ${logTrace}, replay seq ${m.trace.seq} hash ${traceHash(m.trace)}`);
  } else if (state !== logState) {
    playDiverge(p, `machine state differs at the ${what}: recording ${logState}, replay ${state}`);
  }
}

/** After a step: compare the checkpoint (and END) logged for this iteration. */
function playStepEnd(p: PlayEngine, m: ReplayMachine): void {
  for (let i = 0; i < 2; i++) {
    const e = playPeek(p);
    if (e === null || e.iteration !== m.loop.iteration) break;
    if (e.k === 'checkpoint') {
      playAdvance(p);
      compareHashes(p, m, `checkpoint of iteration ${e.iteration}`, replayCheckpointHash(m), e.state, e.trace, e.traceSeq, e.output);
    } else if (e.k === 'end') {
      playAdvance(p);
      playCheckEnd(p, m, e);
      return;
    } else {
      break;
    }
  }
  if (m.loop.exitStatus !== null && !p.rt.ended) {
    const e = playPeek(p);
    if (!(e && e.k === 'end')) playDiverge(p, `the replay's main loop exited with status ${m.loop.exitStatus}, but the recording went on`);
  }
}

/** Attach to the machine being created: the input boundary ignores the host; steps follow the log. */
export function replayPlayAttach(p: PlayEngine, m: ReplayMachine): void {
  p.m = m;
  m.replay = p.rt;
  m.fdt.ignoreHost = true;
  m.loop.stepObservers.push({
    begin: () => {
      replayApplyGap(p);
      if (p.header.mode === 'virtual') replayWrapOutputs(m, p.rt, p.wrappers);
    },
    end: () => playStepEnd(p, m),
  });
}

/** Whether the replay can take another step: not ended, not diverged, not past the log. */
export function replayCanStep(p: PlayEngine): boolean {
  const m = p.m;
  if (!m || p.rt.ended || p.divergence) return false;
  // An interrupted recording: its last iteration may be incomplete, so the replay ends before it.
  if (p.index.end === null && m.loop.iteration + 1 >= p.index.lastIteration) {
    p.truncated = true;
    return false;
  }
  return replayApplyGap(p);
}
