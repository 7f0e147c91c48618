// Reverse execution of a replay (QEMU's replay-debugging.c, generalised): automatic in-memory
// snapshots at intervals within a memory budget, a timeline of every vCPU slice the replay has
// run, any number of instruction-count breakpoints, and seeking to any instruction count. Seek
// restores the nearest snapshot before the slice that reaches the target, replays to the start
// of that iteration, then runs that slice's vCPU for exactly the missing instructions (cpuExec's
// budget) and freezes there: the machine is then "at icount N" mid-iteration, like a debugger
// halting a process. Leaving a frozen state restores the iteration's start and runs it normally,
// so the replay itself never sees the stop (monitors of the log get no STOP event).
// Automatic snapshots start with the first use of reverse execution (a seek, a breakpoint): a
// replay that only runs forward (a check, an export, -icount rr=replay) keeps just the one at the
// start and runs at full speed; the first seek back then replays from there once, taking
// snapshots as it goes.

import { assert } from '../util/index.ts';
import { icountGetRaw, loopStep } from '../loop/index.ts';
import { type TraceRecord, traceRecordsSince } from '../trace/index.ts';
import { cpuExec } from '../cpu/index.ts';
import { type GraphSnapshot, graphSnapshotRestore, graphSnapshotTake } from './graph-snapshot.ts';
import type { LogIndex } from './log-index.ts';
import { type PlayEngine, replayCanStep } from './play.ts';
import type { ReplayMachine } from './replay-state.ts';
import type { IcountRunning, SliceObserver } from '../system/index.ts';

export interface ReplaySnapshot {
  iteration: number;
  icount: number;
  traceSeq: number;
  graph: GraphSnapshot;
}

export interface DebuggerOptions {
  /** Objects a snapshot must reach besides the kernel machine (the monitor set). */
  roots: object[];
  /** Take a snapshot at least every this many instructions (default 20 million). */
  intervalInsns?: number;
  /** ... or every this many iterations (default 2000). */
  intervalIterations?: number;
  /** Memory the snapshots may use (default 256 MiB); beyond it every other one is dropped. */
  budgetBytes?: number;
}

/** The replay debugger: lives beside the machine, outside its snapshots. */
export interface ReplayDebugger {
  p: PlayEngine;
  m: ReplayMachine;
  roots: object[];
  exclude: Set<object>;
  snapshots: ReplaySnapshot[];
  intervalInsns: number;
  intervalIterations: number;
  budgetBytes: number;
  costBytes: number;
  /** Reverse execution was used: automatic snapshots are taken from now on. */
  reverse: boolean;
  /** Every vCPU slice that executed instructions: iteration, ordinal in its step, icount range. */
  timeline: { iter: number[]; ord: number[]; start: number[]; end: number[]; doneIter: number };
  /** Told of every vCPU slice (m.sys.sliceObserver). */
  observer: SliceObserver;
  sliceOrdinal: number;
  freeze: { iteration: number; ordinal: number; target: number } | null;
  frozen: { icount: number; resume: ReplaySnapshot } | null;
  breakpoints: { icount: number; persistent: boolean }[];
  index: LogIndex;
  /**
   * Debugger actions requested by monitor commands. The commands run isolated (their own
   * effects on the machine are undone), then the actions run.
   */
  pending: Array<{ kind: 'seek' | 'break' | 'delete'; icount: number | null }>;
}

/** Thrown from inside a vCPU slice to stop the replay exactly at an instruction count. */
class ReplayFreeze extends Error {
  override name = 'ReplayFreeze';
}

const DEFAULT_INTERVAL_INSNS = 20_000_000;
const DEFAULT_INTERVAL_ITERATIONS = 2000;
const DEFAULT_BUDGET = 256 * 1024 * 1024;
const RUN_STEPS_MAX = 100_000_000;

export function replayDebuggerCreate(p: PlayEngine, m: ReplayMachine, opts: DebuggerOptions): ReplayDebugger {
  const d: ReplayDebugger = {
    p, m, roots: [m, ...opts.roots], exclude: new Set<object>([p.log]), snapshots: [],
    intervalInsns: opts.intervalInsns ?? DEFAULT_INTERVAL_INSNS,
    intervalIterations: opts.intervalIterations ?? DEFAULT_INTERVAL_ITERATIONS,
    budgetBytes: opts.budgetBytes ?? DEFAULT_BUDGET, costBytes: 0, reverse: false,
    timeline: { iter: [], ord: [], start: [], end: [], doneIter: 0 },
    observer: { start: (run) => sliceStart(d, run), end: (run) => sliceEnd(d, run) }, sliceOrdinal: 0, freeze: null,
    frozen: null, breakpoints: [], index: p.index, pending: [],
  };
  d.exclude.add(d);
  d.exclude.add(d.observer);
  p.rt.debugger = d;
  if (m.trace.records) d.exclude.add(m.trace.records);
  m.sys.sliceObserver = d.observer;
  m.loop.stepObservers.push({
    begin: () => {
      d.sliceOrdinal = 0;
      // The start of the replay is always kept, so any instruction count can be reached.
      if (d.snapshots.length === 0 && d.frozen === null) snapshotInsert(d, snapshotTake(d));
    },
    end: () => {
      if (m.loop.iteration > d.timeline.doneIter) d.timeline.doneIter = m.loop.iteration;
    },
  });
  return d;
}

function sliceStart(d: ReplayDebugger, v: IcountRunning): void {
  d.sliceOrdinal++;
  const f = d.freeze;
  const m = d.m;
  if (f === null || f.iteration !== m.loop.iteration || f.ordinal !== d.sliceOrdinal) return;
  d.freeze = null;
  const vcpu = m.sys.currentCpu;
  assert(vcpu !== null && vcpu.cpu === v.counter, 'replay seek: the slice to stop in has no running vCPU');
  const need = f.target - m.clocks.icount;
  assert(need > 0, `replay seek: icount ${f.target} is not inside the slice starting at ${m.clocks.icount}`);
  cpuExec(vcpu.cpu, m.sys.env!, need);
  assert(icountGetRaw(m.clocks) === f.target, `replay seek: stopped at ${icountGetRaw(m.clocks)}, not ${f.target}`);
  throw new ReplayFreeze('frozen');
}

function sliceEnd(d: ReplayDebugger, r: IcountRunning): void {
  const m = d.m;
  if (m.loop.iteration > d.timeline.doneIter) {
    const executed = r.counter.icount - r.start;
    if (executed > 0) {
      const t = d.timeline;
      t.iter.push(m.loop.iteration);
      t.ord.push(d.sliceOrdinal);
      t.start.push(m.clocks.icount);
      t.end.push(m.clocks.icount + executed);
    }
  }
}

/** The current instruction count (replay_get_current_icount). */
export function replayDebuggerIcount(d: ReplayDebugger): number {
  return icountGetRaw(d.m.clocks);
}

function snapshotTake(d: ReplayDebugger): ReplaySnapshot {
  const m = d.m;
  const prev = d.snapshots[d.snapshots.length - 1]?.graph ?? null;
  const graph = graphSnapshotTake(d.roots, { exclude: d.exclude, previous: prev });
  return { iteration: m.loop.iteration, icount: icountGetRaw(m.clocks), traceSeq: m.trace.seq, graph };
}

function snapshotRestore(d: ReplayDebugger, s: ReplaySnapshot): void {
  const m = d.m;
  graphSnapshotRestore(s.graph);
  const recs = m.trace.records;
  if (recs) {
    while (recs.length > 0 && recs[recs.length - 1]!.seq >= s.traceSeq) recs.pop();
  }
  m.clocks.icountRunning = null;
  d.freeze = null;
  d.frozen = null;
  d.sliceOrdinal = 0;
  d.p.headPos = -1;
  d.p.recent = [];
  d.p.recentInputs = [];
  d.p.divergence = null;
}

/** The latest snapshot at or before iteration `it` (snapshots are sorted by iteration). */
function snapshotAtOrBefore(d: ReplayDebugger, it: number): ReplaySnapshot | null {
  const ss = d.snapshots;
  let lo = 0;
  let hi = ss.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ss[mid]!.iteration <= it) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? ss[lo - 1]! : null;
}

function snapshotInsert(d: ReplayDebugger, s: ReplaySnapshot): void {
  let i = d.snapshots.length;
  while (i > 0 && d.snapshots[i - 1]!.iteration > s.iteration) i--;
  if (d.snapshots[i - 1]?.iteration === s.iteration) return;
  d.snapshots.splice(i, 0, s);
  d.costBytes += s.graph.costBytes;
  // Over budget: drop every other snapshot (never the first) and take them half as often.
  for (let guard = 0; d.costBytes > d.budgetBytes && d.snapshots.length > 2 && guard < 64; guard++) {
    d.snapshots = d.snapshots.filter((x, j) => j === 0 || j % 2 === 0);
    d.costBytes = d.snapshots.reduce((a, x) => a + x.graph.costBytes, 0);
    d.intervalInsns *= 2;
    d.intervalIterations *= 2;
  }
}

/** Make sure the start of the replay is saved (the first snapshot, at iteration 0 or later). */
function ensureInitial(d: ReplayDebugger): void {
  if (d.snapshots.length === 0 && d.frozen === null) snapshotInsert(d, snapshotTake(d));
}

/** Take an automatic snapshot when the last one is far enough behind (once reverse execution is in use). */
function maybeSnapshot(d: ReplayDebugger): void {
  if (!d.reverse) return;
  const m = d.m;
  const prev = snapshotAtOrBefore(d, m.loop.iteration);
  const icount = icountGetRaw(m.clocks);
  if (prev && prev.iteration === m.loop.iteration) return;
  if (!prev || icount - prev.icount >= d.intervalInsns || m.loop.iteration - prev.iteration >= d.intervalIterations) {
    snapshotInsert(d, snapshotTake(d));
  }
}

/** Leave a frozen state: back to the start of its iteration (which has not run yet). */
function unfreeze(d: ReplayDebugger): void {
  const f = d.frozen;
  if (f) snapshotRestore(d, f.resume);
}

/** Why a run stopped. */
export type ReplayStop =
  | 'steps' | 'icount' | 'breakpoint' | 'event' | 'iteration' | 'end' | 'divergence' | 'truncated';

function cannotStepReason(d: ReplayDebugger): ReplayStop {
  if (d.p.divergence) return 'divergence';
  if (d.p.rt.ended) return 'end';
  return 'truncated';
}

/** One iteration from a boundary (auto-snapshotting). Returns null when it ran, else why not. */
function stepRaw(d: ReplayDebugger): ReplayStop | null {
  if (!replayCanStep(d.p)) return cannotStepReason(d);
  maybeSnapshot(d);
  loopStep(d.m);
  return null;
}

/**
 * One main-loop iteration (from a frozen state: the rest of the iteration it is in). Returns the
 * trace records it produced and why it could not run, if so.
 */
export function replayDebuggerStep(d: ReplayDebugger): { records: TraceRecord[]; stop: ReplayStop | null } {
  ensureInitial(d);
  unfreeze(d);
  const from = d.m.trace.seq;
  const stop = stepRaw(d);
  return { records: traceRecordsSince(d.m.trace, from), stop };
}

function locateSlice(d: ReplayDebugger, target: number): number {
  const end = d.timeline.end;
  let lo = 0;
  let hi = end.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (end[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo < end.length ? lo : -1;
}

/** Run forward until the timeline reaches `target` or the replay cannot go on. */
function explore(d: ReplayDebugger, target: number): ReplayStop | null {
  unfreeze(d);
  const t = d.timeline;
  for (let i = 0; i < RUN_STEPS_MAX; i++) {
    if (t.end.length > 0 && t.end[t.end.length - 1]! >= target) return null;
    // Only steps past the explored frontier add slices; restore the latest snapshot to get there.
    if (d.m.loop.iteration < t.doneIter) {
      const s = snapshotAtOrBefore(d, t.doneIter);
      if (s && s.iteration > d.m.loop.iteration) snapshotRestore(d, s);
    }
    const stop = stepRaw(d);
    if (stop !== null) return stop;
  }
  return 'steps';
}

/**
 * Stop exactly at instruction count `target`, backwards or forwards. Returns null on success or
 * QEMU's error text. @qemu replay/replay-debugging.c replay_seek
 */
export function replayDebuggerSeek(d: ReplayDebugger, target: number): string | null {
  const last = d.index.end?.icount ?? d.index.lastIcount;
  if (!Number.isSafeInteger(target) || target < 0 || target > last) return 'cannot seek to the specified instruction count';
  d.reverse = true;
  ensureInitial(d);
  if (d.frozen && d.frozen.icount === target) return null;
  if (target === 0) {
    unfreeze(d);
    snapshotRestore(d, d.snapshots[0]!);
    return null;
  }
  let idx = locateSlice(d, target);
  if (idx < 0) {
    explore(d, target);
    idx = locateSlice(d, target);
    if (idx < 0) return 'cannot seek to the specified instruction count';
  }
  const t = d.timeline;
  freezeAt(d, t.iter[idx]!, t.ord[idx]!, target);
  return null;
}

/** Replay to the start of iteration `k` and freeze slice `ordinal` of it at `target`. */
function freezeAt(d: ReplayDebugger, k: number, ordinal: number, target: number): void {
  const m = d.m;
  const boundary = k - 1;
  const here = d.frozen ? d.frozen.resume.iteration : m.loop.iteration;
  const s = snapshotAtOrBefore(d, boundary)!;
  if (d.frozen && here <= boundary && here >= s.iteration) unfreeze(d);
  else if (d.frozen || m.loop.iteration > boundary || m.loop.iteration < s.iteration) snapshotRestore(d, s);
  for (let i = 0; m.loop.iteration < boundary; i++) {
    assert(i < RUN_STEPS_MAX, 'replay seek: too many steps');
    const stop = stepRaw(d);
    assert(stop === null, `replay seek: the replay stopped (${stop}) at iteration ${m.loop.iteration} before reaching ${boundary}`);
  }
  assert(replayCanStep(d.p), 'replay seek: cannot run the iteration that reaches the target');
  const resume = snapshotTake(d);
  d.freeze = { iteration: k, ordinal, target };
  try {
    loopStep(m);
  } catch (e) {
    if (!(e instanceof ReplayFreeze)) throw e;
    d.frozen = { icount: target, resume };
    return;
  }
  assert(false, `replay seek: iteration ${k} did not run slice ${ordinal}`);
}

/** Stop conditions of a run; all optional. */
export interface ReplayRunOptions {
  untilIcount?: number;
  untilIteration?: number;
  /** Stop after the iteration whose trace has an event of this name (needs tracing). */
  untilEvent?: string;
  maxSteps?: number;
}

/** Run forward until a condition, a breakpoint, the end of the log or a divergence. */
export function replayDebuggerRun(d: ReplayDebugger, opts: ReplayRunOptions = {}): { stop: ReplayStop; icount: number } {
  ensureInitial(d);
  const m = d.m;
  const from = d.frozen ? d.frozen.icount : icountGetRaw(m.clocks);
  const bp = d.breakpoints.filter((b) => b.icount > from).sort((a, b) => a.icount - b.icount)[0] ?? null;
  let limit: number | null = bp ? bp.icount : null;
  if (opts.untilIcount !== undefined && opts.untilIcount > from && (limit === null || opts.untilIcount < limit)) limit = opts.untilIcount;
  const max = opts.maxSteps ?? RUN_STEPS_MAX;
  unfreeze(d);
  for (let steps = 0; steps < max; steps++) {
    if (opts.untilIteration !== undefined && m.loop.iteration >= opts.untilIteration) return { stop: 'iteration', icount: icountGetRaw(m.clocks) };
    const seq = m.trace.seq;
    const stop = stepRaw(d);
    if (stop !== null) return { stop, icount: icountGetRaw(m.clocks) };
    if (limit !== null && icountGetRaw(m.clocks) >= limit) {
      const err = replayDebuggerSeek(d, limit);
      assert(err === null, `replay run: could not stop at ${limit}: ${err}`);
      const hit = bp !== null && bp.icount === limit;
      if (hit && !bp.persistent) d.breakpoints = d.breakpoints.filter((b) => b !== bp);
      return { stop: hit ? 'breakpoint' : 'icount', icount: limit };
    }
    if (opts.untilEvent !== undefined && traceRecordsSince(m.trace, seq).some((r) => r.name === opts.untilEvent)) {
      return { stop: 'event', icount: icountGetRaw(m.clocks) };
    }
  }
  return { stop: 'steps', icount: icountGetRaw(m.clocks) };
}

/**
 * Add a breakpoint. One-shot breakpoints (QEMU's replay_break) are deleted when hit; persistent
 * ones (the stepper's) stay. Returns QEMU's error text or null.
 */
export function replayDebuggerBreak(d: ReplayDebugger, icount: number, persistent = false): string | null {
  if (icount < replayDebuggerIcount(d)) return 'cannot set breakpoint at the instruction in the past';
  d.reverse = true;
  if (!d.breakpoints.some((b) => b.icount === icount)) d.breakpoints.push({ icount, persistent });
  return null;
}

/** Delete the breakpoint at `icount`, or all of them. */
export function replayDebuggerDeleteBreak(d: ReplayDebugger, icount?: number): void {
  d.breakpoints = icount === undefined ? [] : d.breakpoints.filter((b) => b.icount !== icount);
}

/**
 * Run `fn` and put the machine back as it was (out-of-band inspection: a monitor command of the
 * debugger must not change the replay).
 */
export function replayDebuggerIsolated<T>(d: ReplayDebugger, fn: () => T): T {
  const s = snapshotTake(d);
  const frozen = d.frozen;
  const running = d.m.clocks.icountRunning;
  const divergence = d.p.divergence;
  try {
    return fn();
  } finally {
    snapshotRestore(d, s);
    d.frozen = frozen;
    d.m.clocks.icountRunning = running;
    d.p.divergence = divergence;
  }
}

/**
 * The end of the next vCPU slice that executes instructions after the current position (the
 * stepper's "step into a slice"), exploring forward as needed; null at the end of the log.
 */
export function replayDebuggerNextSliceEnd(d: ReplayDebugger): number | null {
  const at = d.frozen ? d.frozen.icount : icountGetRaw(d.m.clocks);
  const t = d.timeline;
  for (let i = 0; i < RUN_STEPS_MAX; i++) {
    const idx = locateSlice(d, at + 1);
    if (idx >= 0) return t.end[idx]!;
    if (explore(d, at + 1) !== null && locateSlice(d, at + 1) < 0) return null;
  }
  return null;
}

/** Run the actions queued by monitor commands; returns their error texts. */
export function replayDebuggerRunPending(d: ReplayDebugger): string[] {
  const errors: string[] = [];
  for (const a of d.pending.splice(0)) {
    if (a.kind === 'seek') {
      const err = replayDebuggerSeek(d, a.icount!);
      if (err) errors.push(err);
    } else if (a.kind === 'break') {
      const err = replayDebuggerBreak(d, a.icount!);
      if (err) errors.push(err);
    } else {
      replayDebuggerDeleteBreak(d, a.icount ?? undefined);
    }
  }
  return errors;
}

/** Take a snapshot now if none covers this iteration (tests, the stepper). */
export function replayDebuggerSnapshot(d: ReplayDebugger): void {
  if (d.frozen) return;
  ensureInitial(d);
  if (snapshotAtOrBefore(d, d.m.loop.iteration)?.iteration !== d.m.loop.iteration) snapshotInsert(d, snapshotTake(d));
}

/** Counters for reports and benchmarks. */
export function replayDebuggerStats(d: ReplayDebugger): { snapshots: number; costBytes: number; slices: number; exploredIteration: number } {
  return { snapshots: d.snapshots.length, costBytes: d.costBytes, slices: d.timeline.end.length, exploredIteration: d.timeline.doneIter };
}
