// One main-loop iteration, QEMU's main_loop_wait (util/main-loop.c) in a single thread.
// Phases, in this order (spec §1.2):
//   1. FILL   timeout = nonblocking ? 0 : infinite, then the soonest main_loop_tlg deadline
//   2. PREPARE glib_pollfds_fill: each source's prepare (aio-context first) shortens the timeout;
//             the hooks add the vCPU scheduler's wish (0 while a vCPU can run)
//   3. POLL   qemu_poll_ns: virtual mode advances simulated host time to the timeout or the next
//             scheduled host input; live mode never blocks (the async driver waited before);
//             due host inputs are delivered through the boundary (pollfd.ts)
//   4. DISPATCH glib_pollfds_poll: check, then dispatch ready sources by (priority, attach order)
//   5. WARP   icount_start_warp_timer (hook of the vCPU scheduler)
//   6. TIMERS qemu_clock_run_all_timers: REALTIME, VIRTUAL, HOST, VIRTUAL_RT
// main_loop_should_exit runs after each iteration (drive.ts), as in qemu_main_loop.

import {
  type ClocksState, type ClockType, QEMU_CLOCK_MAX, QEMU_CLOCK_REALTIME, clockAdvanceSimTo, qemuClockGetNs, qemuClockPeekNs, clockPeekNs, getClock,
  qemuSoonestTimeout, qemuTimeoutNsToMs, SCALE_MS,
} from './clock.ts';
import {
  type TimerListGroup, timerListGroupCreate, timerlistgroupDeadlineNs, timerlistRunTimers,
  qemuClockUseForDeadline, timerlistHeadExpireNs, timerlistCount,
} from './timer.ts';
import {
  type AioContext, type QEMUBH, aioContextNew, aioBhNew, qemuBhSchedule, aioComputeTimeout, aioCtxCheck,
  aioDispatch, aioBhScheduledNow,
} from './async.ts';
import { type SourceSet, type LoopSource, sourceSetCreate, gSourceAttach, G_PRIORITY_DEFAULT } from './source.ts';
import { type FdTable, fdTableCreate, hostDeliverDue, hostNextInputNs } from './pollfd.ts';
import { type TraceState, TRACE_CONTROL, traceEnter, traceExit, traceEvent } from '../trace/index.ts';
import type { PrngState, NotifierList } from '../util/index.ts';

/** A QAPI event raised by the kernel (STOP, RESUME, SHUTDOWN...); monitors subscribe. */
export interface QapiEvent {
  event: string;
  data?: Record<string, unknown>;
}

/** Hooks through which higher layers (the vCPU scheduler, run states) take part in the loop. */
export interface LoopHooks {
  /** Poll timeout wished by the vCPU side: 0 while a vCPU can run, -1 for none. */
  pollTimeout: (m: LoopMachine) => number;
  /** Simulated host time advanced by `deltaNs` in the poll (virtual mode): icount warp accounting. */
  onTimeAdvance: (m: LoopMachine, deltaNs: number) => void;
  /** @qemu softmmu/icount.c icount_start_warp_timer */
  startWarpTimer: (m: LoopMachine) => void;
  /** @qemu softmmu/runstate.c main_loop_should_exit; true leaves the loop. */
  shouldExit: (m: LoopMachine) => boolean;
  /** The vCPU side's turn after an iteration (one round-robin slice). */
  vcpuSlice: (m: LoopMachine) => void;
  /** A timer became the head of a main_loop_tlg list. @qemu qemu_timer_notify_cb */
  timerNotify: (m: LoopMachine, type: ClockType) => void;
  /** Whether a vCPU thread has something to do now (not all_cpu_threads_idle). Reads no clock. */
  vcpuBusy: (m: LoopMachine) => boolean;
}

export interface MainLoopState {
  iteration: number;
  /** main_loop_tlg: timers created with timer_new_* */
  tlg: TimerListGroup;
  /** qemu_aio_context: BHs and block-layer handlers */
  aio: AioContext;
  /** iohandler_ctx: qemu_set_fd_handler handlers */
  iohandler: AioContext;
  sources: SourceSet;
  notifyBh: QEMUBH;
  pollState: 'fill' | 'ok' | 'err';
  /**
   * Timeout of the last poll in ns (-1: infinite); the live driver waits this long. The live
   * icount warp shortens it to its warp timer's expiry (the warp happens after the poll).
   */
  lastTimeoutNs: number;
  /** The last virtual-mode poll had nothing to wait for: no deadline, BH or scheduled input. */
  blocked: boolean;
  /** Highest priority (lowest value) found ready by the last prepare phase. */
  maxPriority: number;
  /** Exit status once main_loop_should_exit returned true, else null. */
  exitStatus: number | null;
  /** Virtual mode: the poll never sleeps past this simulated time (runFor's end), or null. */
  horizonNs: number | null;
  /**
   * A chardev read in this iteration left bytes unread (it may take one byte per iteration, as
   * a monitor does): more input is due next iteration. The live vCPU turn keeps short meanwhile.
   */
  inputLeftover: boolean;
  /**
   * While set, the loop is held off as QEMU's is while another thread holds the BQL (the
   * migration thread completing a migration): each iteration polls, so host input is applied,
   * and dispatches only the source this returns (the holder's wait); no timers, bottom halves
   * or other sources run.
   */
  exclusive: (() => LoopSource | null) | null;
  hooks: LoopHooks;
  /** Observers of loopStep (drive.ts), called in order around each step; record/replay use them. */
  stepObservers: LoopStepObserver[];
}

/**
 * Told when loopStep begins (before main_loop_wait) and ends (after the vCPU turn, or after the
 * loop decided to exit). Between an end and the next begin the machine is quiescent. `mid`,
 * when given, runs between main_loop_wait and the vCPU turn: what the main loop wrote can leave
 * then (QEMU's main loop thread writes while the vCPU threads run on). Observers change no
 * machine state.
 */
export interface LoopStepObserver {
  begin: (m: LoopMachine) => void;
  mid?: (m: LoopMachine) => void;
  end: (m: LoopMachine) => void;
}

/** The part of the kernel's Machine that layer 1 owns. Higher layers extend it. */
export interface LoopMachine {
  clocks: ClocksState;
  trace: TraceState;
  rng: PrngState;
  loop: MainLoopState;
  fdt: FdTable;
  /** QAPI events (qapi_event_emit): the monitor layer fans them out to QMP clients. */
  qapiEvents: NotifierList<QapiEvent>;
}

export function defaultLoopHooks(): LoopHooks {
  return {
    pollTimeout: () => -1,
    onTimeAdvance: () => {},
    startWarpTimer: () => {},
    shouldExit: () => false,
    vcpuSlice: () => {},
    timerNotify: (m) => qemuNotifyEvent(m),
    vcpuBusy: () => false,
  };
}

/**
 * Whether the next iteration's poll would not sleep: a BH is scheduled (qemu_notify_event is
 * one) or a vCPU has work. The live driver asks it after an iteration before it waits for host
 * events; it reads no clock, so asking adds nothing to a recording.
 */
export function loopWouldSpin(m: LoopMachine): boolean {
  if (m.loop.exclusive !== null) return false; // only the holder's source can make progress
  return aioBhScheduledNow(m.loop.aio) || m.loop.hooks.vcpuBusy(m);
}

/** Build the main loop of `m` (clocks, trace, rng, seq and fdt already set). @qemu qemu_init_main_loop */
export function qemuInitMainLoop(m: Omit<LoopMachine, 'loop'>): MainLoopState {
  const notify = (type: ClockType): void => {
    const lm = m as LoopMachine;
    lm.loop.hooks.timerNotify(lm, type);
  };
  const tlg = timerListGroupCreate(m.clocks, notify);
  const aio = aioContextNew('qemu_aio_context', m.clocks);
  const iohandler = aioContextNew('iohandler_ctx', m.clocks);
  const sources = sourceSetCreate();
  const loop: MainLoopState = {
    iteration: 0, tlg, aio, iohandler, sources,
    notifyBh: aioBhNew(aio, 'notify_event_cb', () => {}),
    pollState: 'fill', lastTimeoutNs: -1, maxPriority: 0, blocked: false, exitStatus: null, horizonNs: null, inputLeftover: false, exclusive: null, hooks: defaultLoopHooks(),
    stepObservers: [],
  };
  const lm = m as LoopMachine;
  attachAioSource(lm, sources, aio, 'aio-context');
  attachAioSource(lm, sources, iohandler, 'io-handler');
  return loop;
}

function attachAioSource(m: LoopMachine, sources: SourceSet, ctx: AioContext, name: string): LoopSource {
  return gSourceAttach(sources, name, G_PRIORITY_DEFAULT, {
    // GLib takes the timeout in ms, rounded up (aio_ctx_prepare → qemu_timeout_ns_to_ms).
    prepare: () => {
      const ms = qemuTimeoutNsToMs(aioComputeTimeout(ctx));
      return ms < 0 ? -1 : ms * SCALE_MS;
    },
    check: () => aioCtxCheck(ctx),
    dispatch: () => {
      const opened = traceEnter(m, TRACE_CONTROL, 'aio_ctx_dispatch', { ctx: ctx.name });
      aioDispatch(m, ctx);
      traceExit(m, opened, 'aio_ctx_dispatch');
    },
  });
}

/** Wake the main loop. @qemu util/main-loop.c qemu_notify_event */
export function qemuNotifyEvent(m: LoopMachine): void {
  if (m.loop) qemuBhSchedule(m.loop.notifyBh);
}

/**
 * glib_pollfds_fill: prepare the sources in priority order, marking those ready before the poll
 * (`readyAtPrepare`). Returns the timeout; sets `loop.maxPriority`.
 */
function glibPollfdsFill(m: LoopMachine, timeoutNs: number): number {
  let maxPriority = Number.MAX_SAFE_INTEGER;
  let nReady = 0;
  for (const s of m.loop.sources.list) {
    s.readyAtPrepare = false;
    if (nReady > 0 && s.priority > maxPriority) continue;
    const t = s.prepare();
    if (t === 0) {
      s.readyAtPrepare = true;
      nReady++;
      if (s.priority < maxPriority) maxPriority = s.priority;
    }
    timeoutNs = qemuSoonestTimeout(timeoutNs, t);
  }
  m.loop.maxPriority = maxPriority;
  return timeoutNs;
}

/** qemu_poll_ns: wait for input or the timeout. Virtual mode moves simulated time. */
function qemuPollNs(m: LoopMachine, timeoutNs: number): void {
  const c = m.clocks;
  m.loop.lastTimeoutNs = timeoutNs;
  m.loop.blocked = false;
  if (c.mode === 'virtual') {
    const now = c.simNs;
    const next = hostNextInputNs(m.fdt);
    let target = timeoutNs < 0 ? -1 : now + timeoutNs;
    if (next >= 0) target = target < 0 ? Math.max(now, next) : Math.min(target, Math.max(now, next));
    const horizon = m.loop.horizonNs;
    if (horizon !== null && horizon >= now && (target < 0 || target > horizon)) target = horizon;
    if (target < 0) {
      m.loop.blocked = true;
    } else if (target > now) {
      clockAdvanceSimTo(c, target);
      m.loop.hooks.onTimeAdvance(m, target - now);
    }
  }
  const delivered = hostDeliverDue(m.fdt, c.mode === 'virtual' ? c.simNs : Number.MAX_SAFE_INTEGER);
  if (m.trace.level >= TRACE_CONTROL) traceEvent(m, TRACE_CONTROL, 'qemu_poll_ns', { timeout_ns: timeoutNs, inputs: delivered });
}

/** glib_pollfds_poll: check the polled sources, then dispatch the ready ones in order. */
function glibPollfdsPoll(m: LoopMachine): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'glib_pollfds_poll');
  const maxPriority = m.loop.maxPriority;
  const list = m.loop.sources.list;
  let toDispatch: LoopSource[] | null = null;
  for (const s of list) {
    if (s.priority > maxPriority) break;
    if (s.readyAtPrepare || s.check()) (toDispatch ??= []).push(s);
  }
  if (toDispatch !== null) {
    const d = traceEnter(m, TRACE_CONTROL, 'g_main_context_dispatch');
    for (const s of toDispatch) {
      if (!s.attached) continue; // destroyed by an earlier dispatch in this iteration
      m.trace.lastDispatched = s.name;
      m.trace.lastKind = 'source';
      s.dispatch();
    }
    traceExit(m, d, 'g_main_context_dispatch');
  }
  traceExit(m, opened, 'glib_pollfds_poll');
}

/** Run expired main-loop timers by clock type. @qemu qemu_clock_run_all_timers */
export function qemuClockRunAllTimers(m: LoopMachine): boolean {
  let progress = false;
  for (let type = 0; type < QEMU_CLOCK_MAX; type++) {
    if (!qemuClockUseForDeadline(m.clocks, type as ClockType)) continue;
    const tl = m.loop.tlg.lists[type]!;
    if (timerlistCount(tl) === 0) continue;
    progress = timerlistRunTimers(m, tl) || progress;
  }
  return progress;
}

/**
 * One main-loop iteration with QEMU's phases (see the header). `nonblocking` makes the poll
 * timeout 0. @qemu util/main-loop.c main_loop_wait
 */
export function mainLoopWait(m: LoopMachine, nonblocking: boolean): void {
  const loop = m.loop;
  loop.iteration++;
  loop.inputLeftover = false;
  // Live mode: sample the host clock once at the start of every iteration, so the trace's
  // stamps (clockPeekNs) are this iteration's time whatever else reads the clock, and a
  // recording has the same sample at the same place for its replay.
  if (m.clocks.mode === 'live') getClock(m.clocks);
  const tracing = m.trace.level >= TRACE_CONTROL;
  const opened = tracing && traceEnter(m, TRACE_CONTROL, 'main_loop_wait', { iteration: loop.iteration });
  if (loop.exclusive !== null) {
    mainLoopWaitExclusive(m, loop.exclusive());
    if (opened) traceExit(m, true, 'main_loop_wait', { now_ns: clockPeekNs(m.clocks) });
    return;
  }
  loop.pollState = 'fill';
  let timeoutNs = nonblocking ? 0 : -1;
  timeoutNs = qemuSoonestTimeout(timeoutNs, timerlistgroupDeadlineNs(loop.tlg));

  const os = traceEnter(m, TRACE_CONTROL, 'os_host_main_loop_wait');
  timeoutNs = glibPollfdsFill(m, timeoutNs);
  timeoutNs = qemuSoonestTimeout(timeoutNs, loop.hooks.pollTimeout(m));
  qemuPollNs(m, timeoutNs);
  glibPollfdsPoll(m);
  traceExit(m, os, 'os_host_main_loop_wait');
  loop.pollState = 'ok';

  loop.hooks.startWarpTimer(m);
  const tr = tracing && hasExpired(m) && traceEnter(m, TRACE_CONTROL, 'qemu_clock_run_all_timers');
  qemuClockRunAllTimers(m);
  traceExit(m, tr, 'qemu_clock_run_all_timers');
  if (opened) traceExit(m, true, 'main_loop_wait', { now_ns: clockPeekNs(m.clocks) });
}

/**
 * An iteration while the BQL is held elsewhere: poll for the holder's source alone, then
 * dispatch it if it is ready.
 */
function mainLoopWaitExclusive(m: LoopMachine, s: LoopSource | null): void {
  const loop = m.loop;
  const os = traceEnter(m, TRACE_CONTROL, 'os_host_main_loop_wait', { bql: 'held' });
  let timeoutNs = -1;
  loop.pollState = 'fill';
  if (s !== null) {
    s.readyAtPrepare = s.prepare() === 0;
    if (s.readyAtPrepare) timeoutNs = 0;
  }
  qemuPollNs(m, timeoutNs);
  loop.pollState = 'ok';
  if (s !== null && s.attached && (s.readyAtPrepare || s.check())) {
    m.trace.lastDispatched = s.name;
    m.trace.lastKind = 'source';
    s.dispatch();
  }
  traceExit(m, os, 'os_host_main_loop_wait');
}

/**
 * Whether a main-loop timer is due (only to keep empty timer phases out of the trace). It peeks
 * at the clocks: tracing must not add host clock reads, or a replay at another trace level would
 * not consume the recorded ones.
 */
function hasExpired(m: LoopMachine): boolean {
  for (let type = 0; type < QEMU_CLOCK_MAX; type++) {
    const tl = m.loop.tlg.lists[type]!;
    if (!qemuClockUseForDeadline(m.clocks, type as ClockType) || !m.clocks.enabled[type]) continue;
    const head = timerlistHeadExpireNs(tl);
    if (head >= 0 && head <= qemuClockPeekNs(m.clocks, type as ClockType)) return true;
  }
  return false;
}
