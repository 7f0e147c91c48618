// The trace (DESIGN.md §7): enter/exit/event records with seq, ns and icount, a running hash
// over their canonical JSON lines, levels, and optional retention. Invariants: seq increases by
// one per record; enter/exit nest (an exit always names the innermost open enter); the hash of
// a run depends only on the records, so two runs are identical iff their final hashes are.

import { assert } from '../util/index.ts';
import { type ClocksState, clockPeekNs } from '../loop/clock.ts';

/** 0: off; 1: control plane (loop phases, dispatch, monitor, run states); 2: devices too. */
export type TraceLevel = 0 | 1 | 2;
export const TRACE_OFF = 0;
export const TRACE_CONTROL = 1;
export const TRACE_DEVICES = 2;

export type TraceKind = 'enter' | 'exit' | 'event';
export type TraceArgs = Record<string, string | number | boolean | null>;

/** One trace record. `ns` is QEMU_CLOCK_REALTIME (the simulated host time in virtual mode). */
export interface TraceRecord {
  seq: number;
  ns: number;
  icount: number;
  kind: TraceKind;
  name: string;
  args?: TraceArgs;
  /** Running hash after this record (16 hex digits); not part of the canonical line. */
  hash: string;
}

export interface TraceState {
  level: TraceLevel;
  seq: number;
  /** Running 64-bit hash as two 32-bit lanes. */
  h1: number;
  h2: number;
  /** Names of the open enter records, innermost last. */
  stack: string[];
  /** Retained records (null: not retained, only hashed). */
  records: TraceRecord[] | null;
  /** Cap on retained records: older ones are dropped (the hash still covers them). */
  retainMax: number;
  /** Name of the last callback the loop dispatched, and its kind (for limit errors). */
  lastDispatched: string;
  lastKind: 'timer' | 'bh' | 'source' | 'fd' | '';
  /** Called with each record and its canonical line (exporters streaming to a file). */
  sink: ((rec: TraceRecord, line: string) => void) | null;
}

export interface TraceConfig {
  level?: TraceLevel;
  retain?: boolean;
  retainMax?: number;
}

/** The part of a machine the trace reads: its clocks (for ns and icount). */
export interface Traced {
  trace: TraceState;
  clocks: ClocksState;
}

const H1_SEED = 0x811c9dc5;
const H2_SEED = 0x6a09e667;

export function traceCreate(cfg: TraceConfig = {}): TraceState {
  return {
    level: cfg.level ?? TRACE_OFF,
    seq: 0,
    h1: H1_SEED,
    h2: H2_SEED,
    stack: [],
    records: cfg.retain === false ? null : [],
    retainMax: cfg.retainMax ?? 1_000_000,
    lastDispatched: '',
    lastKind: '',
    sink: null,
  };
}

/** The canonical JSON line of a record (what is hashed and what the JSON-lines export writes). */
export function traceCanonicalLine(r: Omit<TraceRecord, 'hash'>): string {
  const base = `{"seq":${r.seq},"ns":${r.ns},"icount":${r.icount},"kind":"${r.kind}","name":${JSON.stringify(r.name)}`;
  return r.args === undefined ? base + '}' : base + `,"args":${JSON.stringify(r.args)}}`;
}

function hashLine(t: TraceState, line: string): void {
  let h1 = t.h1;
  let h2 = t.h2;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  // Final avalanche per record so that a record boundary is part of the hash.
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b);
  h1 = Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35) ^ h2;
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x7feb352d) ^ (h1 >>> 7);
  t.h1 = h1 >>> 0;
  t.h2 = h2 >>> 0;
}

/** The running hash as 16 hex digits. */
export function traceHash(t: TraceState): string {
  return t.h2.toString(16).padStart(8, '0') + t.h1.toString(16).padStart(8, '0');
}

function emit(m: Traced, kind: TraceKind, name: string, args: TraceArgs | undefined): void {
  const t = m.trace;
  const rec = {
    seq: t.seq++,
    ns: clockPeekNs(m.clocks),
    icount: m.clocks.icount,
    kind,
    name,
    ...(args === undefined ? {} : { args }),
    hash: '',
  } as TraceRecord;
  const line = traceCanonicalLine(rec);
  hashLine(t, line);
  rec.hash = traceHash(t);
  if (t.records) {
    if (t.records.length >= t.retainMax) t.records.splice(0, t.records.length >> 1);
    t.records.push(rec);
  }
  if (t.sink) t.sink(rec, line);
}

/**
 * Open a nested span `name` if tracing is at `level` or above. Returns whether it was opened,
 * so the caller passes that to traceExit (a span opened at a level must close at the same one).
 */
export function traceEnter(m: Traced, level: TraceLevel, name: string, args?: TraceArgs): boolean {
  if (m.trace.level < level) return false;
  emit(m, 'enter', name, args);
  m.trace.stack.push(name);
  return true;
}

/** Close the innermost span, which must be `name`. No-op when `opened` is false. */
export function traceExit(m: Traced, opened: boolean, name: string, args?: TraceArgs): void {
  if (!opened) return;
  const top = m.trace.stack.pop();
  if (top !== name) assert(false, `trace: exit '${name}' does not match the open span '${top ?? '(none)'}'`);
  emit(m, 'exit', name, args);
}

/** A point event. */
export function traceEvent(m: Traced, level: TraceLevel, name: string, args?: TraceArgs): void {
  if (m.trace.level < level) return;
  emit(m, 'event', name, args);
}

/**
 * Run `fn` inside a span. Used on call chains where the callee may throw: the span is closed
 * (and the stack unwound) before the exception propagates, so the trace stays well-nested.
 */
export function traceSpan<T>(m: Traced, level: TraceLevel, name: string, args: TraceArgs | undefined, fn: () => T): T {
  if (m.trace.level < level) return fn();
  traceEnter(m, level, name, args);
  const depth = m.trace.stack.length;
  try {
    return fn();
  } finally {
    // Unwind spans left open by a throwing callee so the exit below matches.
    while (m.trace.stack.length > depth) emit(m, 'exit', m.trace.stack.pop()!, { unwound: true });
    traceExit(m, true, name);
  }
}

const EMPTY: TraceRecord[] = [];

/** Records with seq >= `fromSeq` that are still retained (do not modify the result). */
export function traceRecordsSince(t: TraceState, fromSeq: number): TraceRecord[] {
  const recs = t.records;
  if (!recs || recs.length === 0 || fromSeq >= t.seq) return EMPTY;
  const first = recs[0]!.seq;
  return recs.slice(Math.max(0, fromSeq - first));
}
