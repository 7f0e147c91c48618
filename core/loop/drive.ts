// Driving the loop from tests and the library: one step, run for a span of virtual time, run
// until a predicate holds. Virtual mode only (the live driver in bin/ awaits host events between
// iterations instead). Every run is bounded: a hit limit throws LoopLimitError naming the limit,
// the virtual time and the last dispatched callback, so a storm fails instead of hanging.

import { assertNs } from '../util/index.ts';
import { type ClockType, QEMU_CLOCK_REALTIME, qemuClockGetNs } from './clock.ts';
import { LoopLimitError } from './timer.ts';
import { type LoopMachine, mainLoopWait, qemuNotifyEvent } from './main-loop.ts';
import { type TraceRecord, traceRecordsSince } from '../trace/index.ts';

export interface RunLimits {
  /** Most main-loop iterations (default 10,000,000). */
  maxIterations?: number;
  /** Most simulated nanoseconds to let pass (default: unbounded). */
  maxNs?: number;
}

const DEFAULT_MAX_ITERATIONS = 10_000_000;

function describe(m: LoopMachine): string {
  const ns = qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME);
  return `at ${ns} ns (iteration ${m.loop.iteration}); last dispatched: ${m.trace.lastDispatched ? `${m.trace.lastKind} ${m.trace.lastDispatched}` : '(nothing)'}`;
}

/**
 * Exactly one main-loop iteration (main_loop_wait, then main_loop_should_exit, then one vCPU
 * slice). Returns the trace records it produced (empty when tracing is off or not retained).
 * Throws if the machine has already left its main loop.
 */
export function loopStep(m: LoopMachine): TraceRecord[] {
  if (m.loop.exitStatus !== null) {
    throw new LoopLimitError(`the main loop has exited with status ${m.loop.exitStatus}; nothing more runs`);
  }
  const from = m.trace.seq;
  const observers = m.loop.stepObservers;
  for (const o of observers) o.begin(m);
  mainLoopWait(m, false);
  for (const o of observers) o.mid?.(m);
  if (m.loop.hooks.shouldExit(m)) {
    if (m.loop.exitStatus === null) m.loop.exitStatus = 0;
  } else {
    m.loop.hooks.vcpuSlice(m);
  }
  for (const o of observers) o.end(m);
  return traceRecordsSince(m.trace, from);
}

function runLoop(m: LoopMachine, done: () => boolean, limits: RunLimits, what: string, horizonNs: number | null): void {
  const maxIter = limits.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  const startNs = m.clocks.simNs;
  const maxNs = limits.maxNs ?? null;
  if (maxNs !== null) assertNs(maxNs, 'run limit maxNs');
  let cap = horizonNs;
  if (maxNs !== null) cap = cap === null ? startNs + maxNs : Math.min(cap, startNs + maxNs);
  const savedHorizon = m.loop.horizonNs;
  m.loop.horizonNs = cap;
  try {
    for (let i = 0; ; i++) {
      if (done()) return;
      if (m.loop.exitStatus !== null) {
        throw new LoopLimitError(`${what}: the main loop exited with status ${m.loop.exitStatus} ${describe(m)}`);
      }
      if (i >= maxIter) throw new LoopLimitError(`${what}: iteration limit ${maxIter} reached ${describe(m)}`);
      if (maxNs !== null && m.clocks.simNs - startNs >= maxNs) {
        throw new LoopLimitError(`${what}: time limit of ${maxNs} ns reached ${describe(m)}`);
      }
      loopStep(m);
      if (m.loop.blocked && !done()) {
        throw new LoopLimitError(`${what}: the loop would wait forever (no timer, bottom half or input pending) ${describe(m)}`);
      }
    }
  } finally {
    m.loop.horizonNs = savedHorizon;
  }
}

/**
 * Run until `ns` more nanoseconds of simulated host time have passed (virtual mode). An idle
 * machine simply lets the time pass.
 */
export function runFor(m: LoopMachine, ns: number, limits: RunLimits = {}): void {
  assertNs(ns, 'runFor duration');
  if (m.clocks.mode !== 'virtual') throw new Error('runFor needs a virtual-mode machine');
  const target = m.clocks.simNs + ns;
  assertNs(target, 'runFor target time');
  runLoop(m, () => m.clocks.simNs >= target || m.loop.exitStatus !== null, limits, 'runFor', target);
}

/** Run until `pred()` holds, checked before each iteration. Throws LoopLimitError on a limit. */
export function runUntil(m: LoopMachine, pred: () => boolean, limits: RunLimits = {}): void {
  if (m.clocks.mode !== 'virtual') throw new Error('runUntil needs a virtual-mode machine');
  runLoop(m, pred, limits, 'runUntil', null);
}

/** Enable or disable a clock's timers. @qemu util/qemu-timer.c qemu_clock_enable */
export function qemuClockEnable(m: LoopMachine, type: ClockType, enabled: boolean): void {
  const old = m.clocks.enabled[type];
  m.clocks.enabled[type] = enabled;
  if (enabled && !old) qemuNotifyEvent(m);
}
