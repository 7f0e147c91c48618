// Recording (DESIGN.md §6): everything a run takes from outside its configuration is appended to
// the log at its position (main-loop iteration, instruction count). Host events that happen while
// the loop waits (bytes, connections, hang-ups, listeners settling, signals, library input) are
// "gap" events, replayed before the same iteration; what the host answers while the kernel calls
// it (socket and file results, short writes, file contents read on demand) is replayed at the same
// call. Host clocks are sampled once per iteration: the first read of REALTIME or HOST in an
// iteration reads the OS and is logged, later reads in that iteration return the sample, so live
// time is a function of the log. A checkpoint with state hashes follows every few iterations.

import {
  type HostClockSource, type HostInput, type LoopMachine, type VirtualFd, icountGetRaw,
} from '../loop/index.ts';
import { traceHash } from '../trace/index.ts';
import { charState } from '../char/index.ts';
import { type ByteWriter, byteWriterCreate, byteWriterTake } from './log-codec.ts';
import { type LogCursor, type LogEventBody, logCursorCreate, logEventWrite } from './log-events.ts';
import { type ReplayHeader, replayHeaderEncode } from './log-header.ts';
import {
  type ReplayMachine, type ReplayRuntime, replayOutputAdd, replayOutputHash, replayRuntimeCreate, replayWrapOutputs,
} from './replay-state.ts';
import { replayCheckpointHash, replayFullStateHash } from './state-hash.ts';

/** Bytes buffered before they go to the sink. */
const FLUSH_BYTES = 64 * 1024;
/** ... or iterations since the last flush, checked at checkpoints. */
const FLUSH_ITERATIONS = 256;

export interface RecordEngine {
  rt: ReplayRuntime;
  m: ReplayMachine | null;
  header: ReplayHeader;
  w: ByteWriter;
  cur: LogCursor;
  /** Where finished bytes go (a file); null keeps the whole log in `chunks`. */
  sink: ((chunk: Uint8Array) => void) | null;
  chunks: Uint8Array[];
  bytesWritten: number;
  events: number;
  inStep: boolean;
  /** Inside machine creation: the kernel runs, host events cannot happen. */
  inKernel: boolean;
  /** Depth of host calls made by the kernel (socket, file, stdio providers). */
  ioDepth: number;
  /** Arrivals produced inside a host call, written after the call's own event. */
  ioArrivals: LogEventBody[];
  /** Per descriptor: calls of its onInboundChange so far (file input is read on demand there). */
  feeds: Map<number, number>;
  /** The descriptor whose onInboundChange runs now, or -1. */
  feeding: number;
  writes: Map<number, number>;
  /** Descriptors opened by host callbacks, logged at the next event. */
  pendingOpens: VirtualFd[];
  /** Connectors whose host side may change status, with what the kernel sees. */
  connectors: { host: { status: string; error: string | null }; kernel: { status: string; error: string | null }; fd: number }[];
  lastHorizon: number | null;
  lastSliceCap: number | null;
  finished: boolean;
  close: (() => void) | null;
  /** Inputs applied so far, and output bytes and inputs at the last checkpoint. */
  inputsApplied: number;
  checkpointInputs: number;
  checkpointOutBytes: number;
  flushedIteration: number;
  checkpointTraceSeq: number;
  /** Virtual mode: the output-hashing writers installed (replayWrapOutputs). */
  wrappers: WeakSet<object>;
}

export interface RecordOptions {
  header: ReplayHeader;
  sink: ((chunk: Uint8Array) => void) | null;
  /** Called once the END event is flushed (closes the file). */
  close?: (() => void) | null;
}

export function replayRecordCreate(opts: RecordOptions): RecordEngine {
  const head = replayHeaderEncode(opts.header);
  const rec: RecordEngine = {
    rt: replayRuntimeCreate('record', opts.header.filename, 0), m: null, header: opts.header,
    w: byteWriterCreate(FLUSH_BYTES * 2), cur: logCursorCreate(0), sink: opts.sink, chunks: [], bytesWritten: 0,
    events: 0, inStep: false, inKernel: true, ioDepth: 0, ioArrivals: [], feeds: new Map(), feeding: -1,
    writes: new Map(), pendingOpens: [], connectors: [], lastHorizon: null, lastSliceCap: opts.header.maxSliceInsns,
    finished: false, close: opts.close ?? null, inputsApplied: 0, checkpointInputs: 0, checkpointOutBytes: 0,
    flushedIteration: 0, checkpointTraceSeq: 0, wrappers: new WeakSet(),
  };
  emitChunk(rec, head);
  return rec;
}

function emitChunk(rec: RecordEngine, chunk: Uint8Array): void {
  if (chunk.length === 0) return;
  rec.bytesWritten += chunk.length;
  if (rec.sink) rec.sink(chunk);
  else rec.chunks.push(chunk);
}

/** Hand buffered bytes to the sink. */
export function replayRecordFlush(rec: RecordEngine): void {
  if (rec.w.len > 0) emitChunk(rec, byteWriterTake(rec.w));
}

function position(rec: RecordEngine): [number, number] {
  const m = rec.m;
  return m ? [m.loop.iteration, icountGetRaw(m.clocks)] : [0, 0];
}

/** Append one event at the current position (after the host changes it must follow). */
export function replayRecordEvent(rec: RecordEngine, e: LogEventBody): void {
  if (rec.finished) return;
  if (e.k !== 'fd-open' && e.k !== 'connector') flushHostChanges(rec);
  const [iteration, icount] = position(rec);
  logEventWrite(rec.w, rec.cur, iteration, icount, e);
  rec.events++;
  if (rec.w.len >= FLUSH_BYTES) replayRecordFlush(rec);
}

/** Log descriptors and connector results the host produced since the last event. */
function flushHostChanges(rec: RecordEngine): void {
  if (rec.pendingOpens.length > 0) {
    const opens = rec.pendingOpens.splice(0);
    for (const fd of opens) {
      // Virtual mode: a descriptor opened from outside (a memory peer) keeps its connection info
      // in the in-memory network, which the replay does not have.
      const info = rec.header.mode === 'virtual' && rec.m ? charState(rec.m).io?.net.connInfo(fd.id) ?? null : null;
      replayRecordEvent(rec, { k: 'fd-open', fd: fd.id, listener: fd.kind === 'listener', name: fd.name, info });
      if (rec.header.mode === 'live') recordWrapFd(rec, fd);
    }
  }
  for (const c of rec.connectors) {
    if (c.host.status !== c.kernel.status) {
      c.kernel.status = c.host.status;
      replayRecordEvent(rec, { k: 'connector', fd: c.fd, field: 'status', value: c.host.status });
    }
    if (c.host.error !== c.kernel.error) {
      c.kernel.error = c.host.error;
      replayRecordEvent(rec, { k: 'connector', fd: c.fd, field: 'error', value: c.host.error });
    }
  }
}

/**
 * Log what the kernel writes to a host descriptor (short writes, and the output hash) and count
 * its onInboundChange calls, where the host reads file input on demand.
 */
export function recordWrapFd(rec: RecordEngine, fd: VirtualFd): void {
  const write = fd.write;
  fd.write = (d) => {
    const index = rec.writes.get(fd.id) ?? 0;
    rec.writes.set(fd.id, index + 1);
    const before = fd.writable;
    const n = write(d);
    replayOutputAdd(rec.rt, fd.id, d, n);
    if (n !== d.length || fd.writable !== before) {
      replayRecordEvent(rec, { k: 'write', fd: fd.id, index, result: n, writable: fd.writable });
    }
    return n;
  };
  const inbound = fd.onInboundChange;
  if (inbound) {
    fd.onInboundChange = (f) => {
      rec.feeds.set(fd.id, (rec.feeds.get(fd.id) ?? 0) + 1);
      const prev = rec.feeding;
      rec.feeding = fd.id;
      try {
        inbound(f);
      } finally {
        rec.feeding = prev;
      }
    };
  }
}

/**
 * Run a host call made by the kernel and log its result (`describe` turns it into JSON data).
 * File contents the call delivers are logged after it.
 */
export function replayRecordIoCall<T>(rec: RecordEngine, op: string, args: unknown, fn: () => T, describe: (r: T) => unknown = (r) => r): T {
  rec.ioDepth++;
  let r: T;
  try {
    r = fn();
  } finally {
    rec.ioDepth--;
  }
  replayRecordEvent(rec, { k: 'io', op, args: JSON.stringify(args), result: JSON.stringify(describe(r) ?? null) });
  if (rec.ioDepth === 0 && rec.ioArrivals.length > 0) {
    for (const e of rec.ioArrivals.splice(0)) replayRecordEvent(rec, e);
  }
  return r;
}

/** Track a connector's host-side status so its changes are logged before the input they explain. */
export function recordConnector(rec: RecordEngine, fd: number, host: { status: string; error: string | null }, kernel: { status: string; error: string | null }): void {
  rec.connectors.push({ host, kernel, fd });
}

function onArrive(rec: RecordEngine, input: HostInput): void {
  if (rec.ioDepth > 0) {
    rec.ioArrivals.push({ k: 'arrive', ordinal: rec.feeds.get(input.fd) ?? 0, input: copyInput(input) });
  } else if (rec.feeding >= 0) {
    replayRecordEvent(rec, { k: 'arrive', ordinal: rec.feeds.get(input.fd) ?? 0, input: copyInput(input) });
  } else {
    replayRecordEvent(rec, { k: 'arrive', ordinal: null, input: copyInput(input) });
  }
}

function copyInput(i: HostInput): HostInput {
  return i.kind === 'data' ? { ...i, data: i.data.slice() } : { ...i };
}

/** Outside the kernel: a host callback or the library calling in between iterations. */
function external(rec: RecordEngine): boolean {
  return !rec.inStep && !rec.inKernel && rec.ioDepth === 0;
}

/**
 * A host clock source that samples `real` once per iteration and logs the samples. Reads before
 * the machine exists belong to iteration 0.
 */
export function replayRecordClock(rec: RecordEngine, real: HostClockSource): HostClockSource {
  const c = rec.rt.clock;
  const iteration = (): number => rec.m?.loop.iteration ?? 0;
  return {
    baseSec: real.baseSec,
    monotonicNs: () => {
      const it = iteration();
      if (c.monoIter === it) return c.mono;
      c.mono = Math.max(c.mono, real.monotonicNs());
      c.monoIter = it;
      replayRecordEvent(rec, { k: 'clock', which: 'mono', value: c.mono });
      return c.mono;
    },
    realtimeNs: () => {
      const it = iteration();
      if (c.wallIter === it) return c.wall;
      c.wall = real.realtimeNs();
      c.wallIter = it;
      replayRecordEvent(rec, { k: 'clock', which: 'wall', value: c.wall });
      return c.wall;
    },
  };
}

/** Attach to the machine being created: hooks on the loop and the input boundary. */
export function replayRecordAttach(rec: RecordEngine, m: ReplayMachine): void {
  rec.m = m;
  m.replay = rec.rt;
  const t = m.fdt;
  t.arriveHooks.push((i) => onArrive(rec, i));
  t.inputHooks.push(() => {
    rec.inputsApplied++;
  });
  t.scheduleHooks.push((atNs, input) => {
    if (external(rec)) replayRecordEvent(rec, { k: 'schedule', atNs, input: copyInput(input) });
  });
  t.openHooks.push((fd) => {
    if (external(rec)) rec.pendingOpens.push(fd);
  });
  m.loop.stepObservers.push({ begin: () => recordStepBegin(rec, m), end: () => recordStepEnd(rec, m) });
}

/** Machine creation is over: from now on, calls from outside the loop are inputs. */
export function replayRecordReady(rec: RecordEngine): void {
  rec.inKernel = false;
}

function recordStepBegin(rec: RecordEngine, m: ReplayMachine): void {
  // The run horizon (virtual mode) and the slice cap (live mode) shape iterations and vCPU turns,
  // so their changes are inputs too.
  if (m.loop.horizonNs !== rec.lastHorizon) {
    rec.lastHorizon = m.loop.horizonNs;
    replayRecordEvent(rec, { k: 'horizon', ns: m.loop.horizonNs });
  }
  if (m.sys.maxSliceInsns !== rec.lastSliceCap) {
    rec.lastSliceCap = m.sys.maxSliceInsns;
    replayRecordEvent(rec, { k: 'slice-cap', insns: m.sys.maxSliceInsns });
  }
  flushHostChanges(rec);
  if (rec.header.mode === 'virtual') replayWrapOutputs(m, rec.rt, rec.wrappers);
  rec.inStep = true;
}

function recordStepEnd(rec: RecordEngine, m: ReplayMachine): void {
  rec.inStep = false;
  if (rec.finished) return;
  // A checkpoint every few iterations, and after every iteration that took input, wrote output
  // or (when tracing) traced anything, so that a replay reports a divergence at the iteration
  // where it starts.
  const io = rec.inputsApplied !== rec.checkpointInputs || rec.rt.out.bytes !== rec.checkpointOutBytes;
  const traced = m.trace.seq !== rec.checkpointTraceSeq;
  if (io || traced || m.loop.iteration % rec.header.checkpointEvery === 0) {
    rec.checkpointInputs = rec.inputsApplied;
    rec.checkpointOutBytes = rec.rt.out.bytes;
    rec.checkpointTraceSeq = m.trace.seq;
    replayRecordEvent(rec, {
      k: 'checkpoint', state: replayCheckpointHash(m), trace: traceHash(m.trace), traceSeq: m.trace.seq,
      output: replayOutputHash(rec.rt),
    });
    // Hand bytes to the file now and then, so an interrupted recording keeps most of its log.
    if (m.loop.iteration - rec.flushedIteration >= FLUSH_ITERATIONS) {
      rec.flushedIteration = m.loop.iteration;
      replayRecordFlush(rec);
    }
  }
  if (m.loop.exitStatus !== null) replayRecordFinish(rec, 'the main loop exited');
}

/** Write the END event (final state hashes) and flush. Idempotent. */
export function replayRecordFinish(rec: RecordEngine, reason: string): void {
  if (rec.finished) return;
  const m = rec.m;
  if (m) {
    replayRecordEvent(rec, {
      k: 'end', exit: m.loop.exitStatus, reason, state: replayFullStateHash(m), trace: traceHash(m.trace),
      traceSeq: m.trace.seq, output: replayOutputHash(rec.rt),
    });
  }
  rec.finished = true;
  replayRecordFlush(rec);
  rec.close?.();
  rec.close = null;
}

/** The whole log when it is kept in memory (no sink), flushed first. */
export function replayRecordLog(rec: RecordEngine): Uint8Array {
  if (rec.sink) throw new Error('the log goes to a file; read the file instead');
  replayRecordFlush(rec);
  const out = new Uint8Array(rec.bytesWritten);
  let off = 0;
  for (const c of rec.chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Library input to a chardev (console input, QMP client bytes): a gap event. */
export function replayRecordChrSend(rec: RecordEngine, chardev: string, data: Uint8Array): void {
  replayRecordEvent(rec, { k: 'chr-send', chardev, data: data.slice() });
}

/** A host signal (SIGINT, SIGTERM...) delivered as qemu_system_killed: a gap event. */
export function replayRecordSignal(rec: RecordEngine, signal: number, pid: number): void {
  replayRecordEvent(rec, { k: 'signal', signal, pid });
}

/** The machine of a record engine, for callers holding only the engine. */
export function replayRecordMachine(rec: RecordEngine): LoopMachine | null {
  return rec.m;
}
