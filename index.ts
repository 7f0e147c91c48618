// detvm's package entry and composition root (DESIGN.md §2): turns a configuration into a
// machine handle. bin/ and library users both start here. This file grows with each layer:
// today it builds the kernel loop; the virt board, chardevs and monitors plug in here.

import {
  type LoopMachine, type LoopConfig, type RunLimits, loopMachineCreate, loopStep, runFor, runUntil,
} from './core/loop/index.ts';
import {
  type TraceRecord, type TraceLevel, traceHash, exportJsonLines, exportCallTree, exportChromeTrace,
} from './core/trace/index.ts';

export type { RunLimits, TraceRecord, TraceLevel };

/** Configuration of a machine (the library's equivalent of the command line). */
export interface MachineConfig {
  /** Seed of the machine's PRNG (default 0). */
  seed?: number;
  /** Trace level: 0 off, 1 control plane, 2 devices too (default 0). */
  trace?: TraceLevel;
  /** Keep trace records in memory (default true when tracing). */
  retainTrace?: boolean;
  /** Wall-clock time at simulated time 0, in whole seconds since the epoch (virtual mode). */
  rtcBaseSec?: number;
}

/** The trace of a machine: its running hash, retained records and exporters. */
export interface TraceHandle {
  /** Running hash over every record so far (16 hex digits). */
  hash(): string;
  /** Retained records (all of them unless a retention cap dropped old ones). */
  records(): readonly TraceRecord[];
  /** Canonical JSON lines of the retained records. */
  jsonLines(): string;
  /** Indented call tree of the retained records. */
  callTree(): string;
  /** Chrome trace JSON (Perfetto) of the retained records. */
  chrome(): string;
}

/** A detvm machine as the library sees it. */
export interface DetvmMachine {
  /** The kernel state (for tests and advanced embedding). */
  readonly kernel: LoopMachine;
  /** Exactly one main-loop iteration; returns its trace records. */
  step(): TraceRecord[];
  /** Run for `ns` nanoseconds of virtual time. */
  runFor(ns: number, limits?: RunLimits): void;
  /** Run until `pred()` holds; throws LoopLimitError when a limit is hit first. */
  runUntil(pred: () => boolean, limits?: RunLimits): void;
  readonly trace: TraceHandle;
}

/**
 * Create a machine from `config`. Virtual mode: simulated time, no host I/O.
 * @param config seed, trace level and clock base; every field is optional.
 */
export function createMachine(config: MachineConfig = {}): DetvmMachine {
  const level = config.trace ?? 0;
  const loopCfg: LoopConfig = {
    seed: config.seed ?? 0,
    trace: { level, retain: config.retainTrace ?? level > 0 },
    clock: { mode: 'virtual', ...(config.rtcBaseSec !== undefined ? { hostBaseSec: config.rtcBaseSec } : {}) },
  };
  const m = loopMachineCreate(loopCfg);
  const records = (): readonly TraceRecord[] => m.trace.records ?? [];
  return {
    kernel: m,
    step: () => loopStep(m),
    runFor: (ns, limits) => runFor(m, ns, limits),
    runUntil: (pred, limits) => runUntil(m, pred, limits),
    trace: {
      hash: () => traceHash(m.trace),
      records,
      jsonLines: () => exportJsonLines(records()),
      callTree: () => exportCallTree(records()),
      chrome: () => exportChromeTrace(records()),
    },
  };
}
