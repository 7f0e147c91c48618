// The round-robin vCPU "thread" (accel/tcg/tcg-accel-ops-rr.c rr_cpu_thread_fn) and icount
// (softmmu/icount.c, tcg-accel-ops-icount.c), run as one turn after each main-loop iteration.
// A turn is one pass of rr_cpu_thread_fn's loop body: handle the VIRTUAL deadline, run each
// runnable vCPU for its share of the instruction budget, then rr_wait_io_event (sleep while every
// CPU thread is idle; otherwise qemu_wait_io_event_common for every CPU, where stops are
// acknowledged). While the thread sleeps, virtual time warps to the next VIRTUAL deadline.

import {
  type ClockType, type LoopMachine, QEMU_CLOCK_REALTIME, QEMU_CLOCK_VIRTUAL, QEMU_TIMER_ATTR_ALL,
  QEMU_TIMER_ATTR_EXTERNAL, NANOSECONDS_PER_SECOND, qemuClockDeadlineNsAll, qemuClockGetNs, qemuNotifyEvent,
  qemuSoonestTimeout, aioBhScheduledNow, timerDel, timerModNs, timerNew, timerPending, timerlistRunTimers, icountWarp,
  hostNextInputNs, qemuClockEnable,
} from '../loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit } from '../trace/index.ts';
import { cpuExec, cpuExit } from '../cpu/index.ts';
import type { SystemMachine, Vcpu } from './system-state.ts';
import {
  allCpuThreadsIdle, asyncRunOnCpu, cpuCanRun, qemuCpuKick, qemuWaitIoEventCommon,
} from './cpus.ts';
import { runstateIsRunning } from './runstate.ts';

/** @qemu TCG_KICK_PERIOD (100 ms of VIRTUAL time) */
export const TCG_KICK_PERIOD_NS = NANOSECONDS_PER_SECOND / 10;
const INT32_MAX = 0x7fffffff;

/** VIRTUAL now (mid-slice reads include the running vCPU's progress, see ClocksState). */
export function virtualNowNs(m: SystemMachine): number {
  return qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);
}

function allGroups(m: LoopMachine) {
  return [m.loop.tlg, m.loop.aio.tlg, m.loop.iohandler.tlg];
}

/** ns → instructions, rounding up. @qemu icount_round */
function icountRound(m: SystemMachine, ns: number): number {
  const unit = 2 ** m.clocks.icountShift;
  return Math.ceil(ns / unit);
}

/**
 * Instructions the vCPUs may run before something needs attention: the VIRTUAL and REALTIME
 * deadlines (capped at INT32_MAX ns) and, in virtual mode, the next scheduled host input and the
 * run horizon (detvm: simulated host time advances with instructions, so input must not be
 * overtaken). @qemu icount_get_limit
 */
function icountGetLimit(m: SystemMachine): number {
  let deadline = qemuClockDeadlineNsAll(allGroups(m), QEMU_CLOCK_VIRTUAL, QEMU_TIMER_ATTR_ALL);
  deadline = qemuSoonestTimeout(deadline, qemuClockDeadlineNsAll(allGroups(m), QEMU_CLOCK_REALTIME, QEMU_TIMER_ATTR_ALL));
  if (m.clocks.mode === 'virtual') {
    const now = m.clocks.simNs;
    const next = hostNextInputNs(m.fdt);
    if (next >= 0) deadline = qemuSoonestTimeout(deadline, Math.max(0, next - now));
    const horizon = m.loop.horizonNs;
    if (horizon !== null) deadline = qemuSoonestTimeout(deadline, Math.max(0, horizon - now));
  }
  if (deadline < 0 || deadline > INT32_MAX) deadline = INT32_MAX;
  return icountRound(m, deadline);
}

/**
 * The vCPU turn while a chardev still has input to read or a bottom half waits. QEMU's main
 * loop thread reads a monitor's command a byte per iteration while the vCPU threads run on;
 * here the two take turns, so a full slice per byte would make a busy guest's monitor answer
 * in tens of ms (live mode), or in seconds when no timer bounds the slice (virtual mode).
 */
const INPUT_SLICE_INSNS = 10_000;

/** @qemu icount_percpu_budget */
function icountPercpuBudget(m: SystemMachine): number {
  const limit = icountGetLimit(m);
  const slice = Math.floor(limit / m.sys.vcpus.length);
  const budget = slice === 0 ? limit : slice;
  let cap = m.sys.maxSliceInsns;
  // A BH already scheduled would kick the vCPU out at once (icount_notify_exit). In virtual mode
  // too: without a cap a guest that arms no timer runs INT32_MAX ns per turn, seconds of host
  // time, between two bytes of a monitor command.
  const waiting = m.loop.inputLeftover || aioBhScheduledNow(m.loop.aio) || aioBhScheduledNow(m.loop.iohandler);
  if (waiting && (cap === null || cap > INPUT_SLICE_INSNS)) {
    cap = INPUT_SLICE_INSNS;
  }
  return cap !== null && budget > cap ? cap : budget;
}

/** Run VIRTUAL timers on the vCPU side when one is due. @qemu icount_handle_deadline */
function icountHandleDeadline(m: SystemMachine): void {
  const deadline = qemuClockDeadlineNsAll(allGroups(m), QEMU_CLOCK_VIRTUAL, QEMU_TIMER_ATTR_ALL);
  if (deadline !== 0) return;
  const opened = traceEnter(m, TRACE_CONTROL, 'icount_handle_deadline');
  // icount_notify_aio_contexts: the AioContexts run their own VIRTUAL timers when they dispatch.
  timerlistRunTimers(m, m.loop.tlg.lists[QEMU_CLOCK_VIRTUAL]);
  traceExit(m, opened, 'icount_handle_deadline');
}

function rrKickThread(m: SystemMachine): void {
  const t = m.sys.kickTimer!;
  timerModNs(t, virtualNowNs(m) + TCG_KICK_PERIOD_NS);
  // rr_kick_next_cpu: end the current vCPU's turn so the next one runs.
  const cur = m.sys.rrCurrentCpu;
  if (cur) cpuExit(cur.cpu);
}

/** @qemu rr_start_kick_timer: only with more than one vCPU. */
function rrStartKickTimer(m: SystemMachine): void {
  const s = m.sys;
  if (!s.kickTimer && s.vcpus.length > 1) {
    s.kickTimer = timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'rr_kick_thread', () => rrKickThread(m));
  }
  if (s.kickTimer && !timerPending(s.kickTimer)) timerModNs(s.kickTimer, virtualNowNs(m) + TCG_KICK_PERIOD_NS);
}

function rrStopKickTimer(m: SystemMachine): void {
  const t = m.sys.kickTimer;
  if (t && timerPending(t)) timerDel(t);
}

/** Execute one vCPU for `budget` instructions and fold them into icount and time. */
function tcgCpusExec(m: SystemMachine, v: Vcpu, budget: number): void {
  const s = m.sys;
  const opened = traceEnter(m, TRACE_CONTROL, 'tcg_cpus_exec', { cpu: v.cpu.cpuIndex, budget });
  const c = m.clocks;
  const run = { counter: v.cpu, start: v.cpu.icount };
  s.currentCpu = v;
  c.icountRunning = run;
  s.sliceObserver?.start(run);
  let exit: string;
  try {
    exit = cpuExec(v.cpu, s.env!, budget);
  } finally {
    s.currentCpu = null;
    s.sliceObserver?.end(run);
    c.icountRunning = null;
  }
  // icount_process_data: account for executed instructions; in virtual mode simulated host time
  // moves with them, so REALTIME and VIRTUAL advance together while the guest runs.
  const executed = v.cpu.icount - run.start;
  c.icount += executed;
  if (c.mode === 'virtual') c.simNs += executed * 2 ** c.icountShift;
  traceExit(m, opened, 'tcg_cpus_exec', { executed, exit });
}

/** One pass of the RR thread's loop (see the header). Called after each main-loop iteration. */
export function rrThreadTurn(m: SystemMachine): void {
  const s = m.sys;
  if (s.vcpus.length === 0) return;
  const first = s.vcpus[0]!;
  let woken = false;
  if (!s.rrStarted) {
    // Wait for the initial kick-off after machine start, processing queued work meanwhile.
    if (first.stopped) {
      if (s.vcpus.some((v) => v.work.length > 0 || v.stop)) for (const v of s.vcpus) qemuWaitIoEventCommon(m, v);
      return;
    }
  } else if (s.rrWaiting) {
    if (allCpuThreadsIdle(m)) return; // still asleep on halt_cond
    woken = true;
  }
  const opened = traceEnter(m, TRACE_CONTROL, 'rr_cpu_thread_fn');
  if (!s.rrStarted) {
    s.rrStarted = true;
    rrStartKickTimer(m);
    s.rrNextCpu = 0;
    first.cpu.exitRequest = true; // process pending work first
  } else if (woken) {
    // The rest of rr_wait_io_event, now that a CPU thread is no longer idle.
    s.rrWaiting = false;
    rrStartKickTimer(m);
    for (const v of s.vcpus) qemuWaitIoEventCommon(m, v);
  }
  let budget = 0;
  if (m.clocks.icountEnabled) {
    icountHandleDeadline(m);
    budget = icountPercpuBudget(m);
  }
  let idx: number | null = s.rrNextCpu ?? 0;
  while (idx !== null) {
    const v = s.vcpus[idx]!;
    if (v.work.length > 0 || v.cpu.exitRequest) break;
    s.rrCurrentCpu = v;
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    if (cpuCanRun(m, v)) {
      tcgCpusExec(m, v, budget);
    } else if (v.stop) {
      break;
    }
    idx = idx + 1 < s.vcpus.length ? idx + 1 : null;
  }
  s.rrCurrentCpu = null;
  if (idx !== null) s.vcpus[idx]!.cpu.exitRequest = false;
  s.rrNextCpu = idx;
  const idle = allCpuThreadsIdle(m);
  if (m.clocks.icountEnabled && idle) qemuNotifyEvent(m);
  // rr_wait_io_event
  if (idle) {
    rrStopKickTimer(m);
    s.rrWaiting = true;
  } else {
    rrStartKickTimer(m);
    for (const v of s.vcpus) qemuWaitIoEventCommon(m, v);
  }
  traceExit(m, opened, 'rr_cpu_thread_fn');
}

/** The poll may not sleep while a vCPU can run; with all idle it sleeps to the VIRTUAL deadline. */
function rrPollTimeout(m: SystemMachine): number {
  const s = m.sys;
  s.warpDeadlineNs = -1;
  if (s.vcpus.length === 0) return -1;
  if (!allCpuThreadsIdle(m)) return 0;
  if (!m.clocks.icountEnabled || !runstateIsRunning(m) || !m.clocks.enabled[QEMU_CLOCK_VIRTUAL]) return -1;
  // Live mode: REALTIME passes on its own; the poll just must not sleep past the deadline.
  // icount_start_warp_timer: the warp timer on VIRTUAL_RT sleeps until the VIRTUAL deadline.
  s.warpDeadlineNs = qemuClockDeadlineNsAll(allGroups(m), QEMU_CLOCK_VIRTUAL, ~QEMU_TIMER_ATTR_EXTERNAL);
  return s.warpDeadlineNs;
}

/** Simulated time passed while every vCPU slept: warp VIRTUAL by as much, up to its deadline. */
function rrOnTimeAdvance(m: SystemMachine, deltaNs: number): void {
  const d = m.sys.warpDeadlineNs;
  if (d < 0 || !m.clocks.icountEnabled) return;
  const warp = Math.min(deltaNs, d);
  icountWarp(m.clocks, warp);
  // icount_warp_rt → qemu_clock_notify(VIRTUAL): wake the vCPU side to run the due timers.
  if (warp === d) rrTimerNotify(m, QEMU_CLOCK_VIRTUAL);
}

/**
 * Live mode: while every vCPU sleeps, VIRTUAL follows real time up to its next deadline (the warp
 * timer on VIRTUAL_RT with sleep=on). Called after each main-loop iteration's poll.
 * @qemu icount_start_warp_timer, icount_warp_rt
 */
function rrLiveWarp(m: SystemMachine): void {
  const s = m.sys;
  const c = m.clocks;
  const idle = c.mode === 'live' && c.icountEnabled && s.vcpus.length > 0 && runstateIsRunning(m) &&
    c.enabled[QEMU_CLOCK_VIRTUAL] && allCpuThreadsIdle(m);
  if (!idle) {
    s.warpStartNs = null;
    return;
  }
  const now = qemuClockGetNs(c, QEMU_CLOCK_REALTIME);
  if (s.warpStartNs === null) {
    s.warpStartNs = now;
    return;
  }
  const d = qemuClockDeadlineNsAll(allGroups(m), QEMU_CLOCK_VIRTUAL, ~QEMU_TIMER_ATTR_EXTERNAL);
  const warp = d < 0 ? 0 : Math.min(now - s.warpStartNs, d);
  s.warpStartNs = now;
  // The warp timer (VIRTUAL_RT) now expires d - warp from now: the next poll sleeps no longer,
  // even though this iteration's poll timeout was computed before the warp.
  if (d > warp) m.loop.lastTimeoutNs = qemuSoonestTimeout(m.loop.lastTimeoutNs, d - warp);
  if (warp <= 0 && d !== 0) return;
  icountWarp(c, warp);
  if (warp === d) rrTimerNotify(m, QEMU_CLOCK_VIRTUAL);
}

/** @qemu softmmu/cpu-timers.c qemu_timer_notify_cb */
function rrTimerNotify(m: SystemMachine, type: ClockType): void {
  if (!m.clocks.icountEnabled || type !== QEMU_CLOCK_VIRTUAL) {
    qemuNotifyEvent(m);
    return;
  }
  const cur = m.sys.currentCpu;
  if (cur) {
    qemuCpuKick(m, cur); // leave the slice and recompute the instruction budget
  } else if (m.sys.vcpus.length > 0) {
    asyncRunOnCpu(m, m.sys.vcpus[0]!, 'do_nothing', () => {});
  } else {
    qemuNotifyEvent(m);
  }
}

/**
 * A bottom half was scheduled while a vCPU runs: kick it so the main loop gets its turn now
 * (with icount QEMU 7.1+ does the same in aio_bh_enqueue). @qemu icount_notify_exit
 */
function icountNotifyExit(m: SystemMachine): void {
  const cur = m.sys.currentCpu;
  if (m.clocks.icountEnabled && cur) qemuCpuKick(m, cur);
}

/** Install the scheduler's hooks into the main loop. */
export function rrInstallHooks(m: SystemMachine): void {
  // aio_bh_enqueue calls icount_notify_exit for a BH of any AioContext.
  m.loop.aio.onEnqueue = () => icountNotifyExit(m);
  m.loop.iohandler.onEnqueue = m.loop.aio.onEnqueue;
  const h = m.loop.hooks;
  h.pollTimeout = () => rrPollTimeout(m);
  h.onTimeAdvance = (_lm, delta) => rrOnTimeAdvance(m, delta);
  h.startWarpTimer = () => rrLiveWarp(m);
  h.vcpuSlice = () => rrThreadTurn(m);
  h.timerNotify = (_lm, type) => rrTimerNotify(m, type);
  h.vcpuBusy = () => m.sys.vcpus.length > 0 && !allCpuThreadsIdle(m);
}
