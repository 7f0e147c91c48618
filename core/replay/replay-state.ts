// The replay state that hangs off a recording or replaying machine (`m.replay`): plain data that
// in-memory snapshots save and restore with the rest of the machine (the log read position, the
// host clock samples of the current iteration, the running hash of output bytes). The engines'
// own bookkeeping (log bytes, snapshots, breakpoints) lives outside the machine, so a snapshot
// restore does not rewind the debugger itself.

import { icountGetRaw } from '../loop/index.ts';
import { type LogCursor, logCursorCreate } from './log-events.ts';
import { type HashedMachine, type Hash64, hashHex, hashWord } from './state-hash.ts';
import type { ReplayDebugger } from './debugger.ts';

export type ReplayMode = 'record' | 'play';

/** How monitor commands see record/replay (info replay, replay_break...). */
export type ReplayView = 'none' | 'record' | 'play';

export interface ReplayRuntime {
  mode: ReplayMode;
  /** The log file name as given when recording (rrfile=), printed by info replay. */
  filename: string;
  /** Replay: the name of the log being replayed, which the debugger's info replay prints. */
  playFilename: string;
  /**
   * What monitor commands report. In a replay the monitors of the log see 'record', exactly as
   * when the log was written (so their output is reproduced byte for byte); the debugger's
   * commands run with 'play'.
   */
  view: ReplayView;
  /** Replay: where the next event is read. Record: unused. */
  cursor: LogCursor;
  /** Host clock samples: each clock is read once per main-loop iteration (-1: not yet). */
  clock: { monoIter: number; mono: number; wallIter: number; wall: number };
  /** Running hash of every byte accepted by a host descriptor, and their count. */
  out: Hash64 & { bytes: number };
  /** Replay: the END event was consumed. */
  ended: boolean;
  /** Replay: the debugger (outside snapshots: it is excluded from them). */
  debugger: ReplayDebugger | null;
}

/** A machine with record/replay attached (VirtMachine satisfies it). */
export interface ReplayMachine extends HashedMachine {
  replay?: ReplayRuntime;
}

export function replayRuntimeCreate(mode: ReplayMode, filename: string, eventsAt: number): ReplayRuntime {
  return {
    mode, filename, playFilename: filename, view: 'record', cursor: logCursorCreate(eventsAt),
    clock: { monoIter: -1, mono: 0, wallIter: -1, wall: 0 },
    out: { h1: 0x811c9dc5, h2: 0x6a09e667, bytes: 0 }, ended: false, debugger: null,
  };
}

/** The machine's record/replay state, or null when neither records nor replays. */
export function replayRuntime(m: { replay?: ReplayRuntime }): ReplayRuntime | null {
  return m.replay ?? null;
}

/**
 * What monitor commands report: mode, file name and the instruction count (replay_get_current_icount
 * is the raw icount). @qemu replay/replay.c replay_mode, replay_get_filename
 */
export function replayInfo(m: ReplayMachine): { view: ReplayView; filename: string; icount: number } {
  const rt = m.replay;
  const filename = rt ? (rt.view === 'play' ? rt.playFilename : rt.filename) : '';
  return { view: rt ? rt.view : 'none', filename, icount: icountGetRaw(m.clocks) };
}

/** Fold `n` accepted bytes of `data` written to descriptor `fd` into the output hash. */
export function replayOutputAdd(rt: ReplayRuntime, fd: number, data: Uint8Array, n: number): void {
  if (n <= 0) return;
  const h = rt.out;
  hashWord(h, fd);
  hashWord(h, n);
  for (let i = 0; i < n; i++) hashWord(h, data[i]!);
  h.bytes += n;
}

/**
 * Virtual mode: fold what the kernel writes to every descriptor into the output hash, wrapping
 * each descriptor's writer once (checked at every step; `wrappers` marks the wrappers, so a
 * snapshot restore that brings an older writer back gets it wrapped again). Live mode wraps the
 * host's descriptors instead (record-io.ts, play-io.ts).
 */
export function replayWrapOutputs(m: ReplayMachine, rt: ReplayRuntime, wrappers: WeakSet<object>): void {
  for (const fd of m.fdt.fds.values()) {
    const write = fd.write;
    if (wrappers.has(write)) continue;
    const wrapped = (d: Uint8Array): number => {
      const n = write(d);
      replayOutputAdd(rt, fd.id, d, n);
      return n;
    };
    wrappers.add(wrapped);
    fd.write = wrapped;
  }
}

export function replayOutputHash(rt: ReplayRuntime): string {
  return hashHex(rt.out);
}
