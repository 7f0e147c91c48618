// The four QEMU clocks (REALTIME, VIRTUAL, HOST, VIRTUAL_RT) in integer nanoseconds.
// Mirrors include/qemu/timer.h, util/qemu-timer.c (qemu_clock_*) and softmmu/cpu-timers.c
// (cpu ticks). Invariants: every value is a safe integer; in virtual mode the only source of
// host time is `c.simNs`, which only the main loop advances; VIRTUAL starts disabled, as in
// qemu_clock_init, and is enabled by the first resume_all_vcpus.
// HOST differs from QEMU in one way: ns since the Unix epoch (~1.8e18) do not fit a JS number
// exactly (2^53 ns is 104 days), so the HOST clock counts ns since `hostBaseSec`, a whole
// second; wall-clock time is hostBaseSec + HOST/1e9 (see hostWallClock).

import { assertNs } from '../util/index.ts';

/** QEMUClockType; the numeric order matters (timers are run in this order). */
export const QEMU_CLOCK_REALTIME = 0;
export const QEMU_CLOCK_VIRTUAL = 1;
export const QEMU_CLOCK_HOST = 2;
export const QEMU_CLOCK_VIRTUAL_RT = 3;
export const QEMU_CLOCK_MAX = 4;
export type ClockType = 0 | 1 | 2 | 3;
export const CLOCK_NAMES = ['realtime', 'virtual', 'host', 'virtual_rt'] as const;

export const SCALE_MS = 1_000_000;
export const SCALE_US = 1_000;
export const SCALE_NS = 1;
export const NANOSECONDS_PER_SECOND = 1_000_000_000;

/** 'virtual': one simulated host time, warped by the loop. 'live': host clocks from the OS. */
export type ClockMode = 'virtual' | 'live';

/**
 * Reads of the real host clocks, used only in live mode. Implemented in core/host/ (the only
 * code allowed to touch real time); every value read goes through the replay boundary there.
 */
export interface HostClockSource {
  monotonicNs(): number;
  /** Wall-clock ns since `baseSec` (a whole second since the epoch, fixed at start-up). */
  realtimeNs(): number;
  readonly baseSec: number;
}

/** Clock state: plain data except for the live-mode host source. */
export interface ClocksState {
  mode: ClockMode;
  /** Simulated host monotonic time (virtual mode): what REALTIME reads. */
  simNs: number;
  /** Wall-clock second that HOST counts from (the -rtc base in virtual mode). */
  hostBaseSec: number;
  /** Per-clock enabled flag (qemu_clock_enable); VIRTUAL starts disabled. */
  enabled: [boolean, boolean, boolean, boolean];
  // softmmu/cpu-timers.c timers_state
  cpuTicksEnabled: boolean;
  cpuClockOffsetNs: number;
  cpuTicksOffset: number;
  cpuTicksPrev: number;
  // icount (softmmu/icount.c): VIRTUAL = icountBiasNs + (icount << icountShift) when enabled.
  icountEnabled: boolean;
  icountShift: number;
  icountBiasNs: number;
  /** Instructions retired by all vCPUs, as folded in by the scheduler (qemu_icount). */
  icount: number;
  /**
   * While a vCPU slice runs: that vCPU's instruction counter and its value when the slice began,
   * so VIRTUAL read by a device mid-slice includes the instructions executed so far
   * (icount_get_executed). Null between slices, which is when snapshots are taken.
   */
  icountRunning: { counter: { icount: number }; start: number } | null;
  host: HostClockSource | null;
  /** Live mode: the last host monotonic time read (what the trace stamps records with). */
  lastHostNs: number;
  /** Live mode: the last HOST (wall) clock read. */
  lastHostRealtimeNs: number;
}

export interface ClockConfig {
  mode?: ClockMode;
  /** Wall-clock time at simulated time 0, in whole seconds since the Unix epoch (virtual mode). */
  hostBaseSec?: number;
  /** Enable icount with this shift (0..10): each instruction is 2^shift ns of VIRTUAL time. */
  icountShift?: number | null;
  host?: HostClockSource | null;
}

/** 2026-01-01T00:00:00Z: the default wall-clock origin of a virtual-mode machine. */
export const DEFAULT_HOST_BASE_SEC = 1_767_225_600;

export function clocksCreate(cfg: ClockConfig = {}): ClocksState {
  const mode = cfg.mode ?? 'virtual';
  const shift = cfg.icountShift ?? null;
  if (shift !== null && !(Number.isInteger(shift) && shift >= 0 && shift <= 10)) {
    throw new RangeError('icount: Invalid shift value');
  }
  if (mode === 'live' && !cfg.host) throw new Error('live clock mode needs a host clock source');
  const base = cfg.hostBaseSec ?? DEFAULT_HOST_BASE_SEC;
  if (!Number.isSafeInteger(base) || base < 0) throw new RangeError(`rtc base ${base} is not a whole number of seconds since the epoch`);
  return {
    mode,
    simNs: 0,
    hostBaseSec: mode === 'live' ? cfg.host!.baseSec : cfg.hostBaseSec ?? DEFAULT_HOST_BASE_SEC,
    enabled: [true, false, true, true],
    cpuTicksEnabled: false,
    cpuClockOffsetNs: 0,
    cpuTicksOffset: 0,
    cpuTicksPrev: 0,
    icountEnabled: shift !== null,
    icountShift: shift ?? 0,
    icountBiasNs: 0,
    icount: 0,
    icountRunning: null,
    host: cfg.host ?? null,
    lastHostNs: 0,
    lastHostRealtimeNs: 0,
  };
}

/** Host monotonic time: the simulated time in virtual mode. @qemu util/qemu-timer.c get_clock */
export function getClock(c: ClocksState): number {
  if (c.mode === 'virtual') return c.simNs;
  const ns = c.host!.monotonicNs();
  c.lastHostNs = ns;
  return ns;
}

/**
 * REALTIME as last seen, without reading the host: the simulated time in virtual mode, the last
 * host read in live mode. Observers (the trace) use it, so that how much is traced never changes
 * the host reads a recording logs and its replay consumes.
 */
export function clockPeekNs(c: ClocksState): number {
  return c.mode === 'virtual' ? c.simNs : c.lastHostNs;
}

/** qemu_clock_get_ns for observers: any clock, from the last host reads (see clockPeekNs). */
export function qemuClockPeekNs(c: ClocksState, type: ClockType): number {
  if (c.mode === 'virtual') return qemuClockGetNs(c, type);
  const cpuClock = c.cpuTicksEnabled ? c.cpuClockOffsetNs + c.lastHostNs : c.cpuClockOffsetNs;
  switch (type) {
    case QEMU_CLOCK_REALTIME:
      return c.lastHostNs;
    case QEMU_CLOCK_VIRTUAL:
      return c.icountEnabled ? icountGetNs(c) : cpuClock;
    case QEMU_CLOCK_HOST:
      return c.lastHostRealtimeNs;
    case QEMU_CLOCK_VIRTUAL_RT:
      return cpuClock;
  }
}

/** @qemu softmmu/cpu-timers.c cpu_get_clock */
export function cpuGetClock(c: ClocksState): number {
  return c.cpuTicksEnabled ? c.cpuClockOffsetNs + getClock(c) : c.cpuClockOffsetNs;
}

/** Instructions so far, including the running vCPU's part. @qemu icount_get_raw_locked */
export function icountGetRaw(c: ClocksState): number {
  const r = c.icountRunning;
  return r === null ? c.icount : c.icount + (r.counter.icount - r.start);
}

/** VIRTUAL time under icount. @qemu softmmu/icount.c icount_get */
export function icountGetNs(c: ClocksState): number {
  return c.icountBiasNs + icountGetRaw(c) * 2 ** c.icountShift;
}

/** @qemu util/qemu-timer.c qemu_clock_get_ns */
export function qemuClockGetNs(c: ClocksState, type: ClockType): number {
  switch (type) {
    case QEMU_CLOCK_REALTIME:
      return getClock(c);
    case QEMU_CLOCK_VIRTUAL:
      return c.icountEnabled ? icountGetNs(c) : cpuGetClock(c);
    case QEMU_CLOCK_HOST:
      if (c.mode === 'virtual') return c.simNs;
      return (c.lastHostRealtimeNs = c.host!.realtimeNs());
    case QEMU_CLOCK_VIRTUAL_RT:
      return cpuGetClock(c);
  }
}

/** Wall-clock time of the HOST clock as QMP timestamps want it. */
export function hostWallClock(c: ClocksState): { seconds: number; microseconds: number } {
  const ns = qemuClockGetNs(c, QEMU_CLOCK_HOST);
  const sec = Math.floor(ns / NANOSECONDS_PER_SECOND);
  return { seconds: c.hostBaseSec + sec, microseconds: Math.floor((ns - sec * NANOSECONDS_PER_SECOND) / 1000) };
}

/** Start VIRTUAL ticking. @qemu softmmu/cpu-timers.c cpu_enable_ticks */
export function cpuEnableTicks(c: ClocksState): void {
  if (c.cpuTicksEnabled) return;
  const now = getClock(c);
  c.cpuTicksOffset -= now;
  c.cpuClockOffsetNs -= now;
  c.cpuTicksEnabled = true;
}

/** Freeze VIRTUAL at its current value. @qemu softmmu/cpu-timers.c cpu_disable_ticks */
export function cpuDisableTicks(c: ClocksState): void {
  if (!c.cpuTicksEnabled) return;
  const now = getClock(c);
  c.cpuTicksOffset += now;
  c.cpuTicksPrev = c.cpuTicksOffset;
  c.cpuClockOffsetNs = c.cpuClockOffsetNs + now;
  c.cpuTicksEnabled = false;
}

/** Advance simulated host time to `ns` (virtual mode only; time never goes backwards). */
export function clockAdvanceSimTo(c: ClocksState, ns: number): void {
  assertNs(ns, 'simulated host time');
  if (c.mode !== 'virtual') throw new Error('clockAdvanceSimTo: only a virtual-mode machine has simulated time');
  if (ns < c.simNs) throw new RangeError(`simulated time cannot go back from ${c.simNs} to ${ns} ns`);
  c.simNs = ns;
}

/** Fold retired instructions into icount (VIRTUAL advances with them). */
export function icountAdd(c: ClocksState, insns: number): void {
  c.icount += insns;
}

/** Warp VIRTUAL forward by `ns` while every vCPU is idle. @qemu softmmu/icount.c icount_warp_rt */
export function icountWarp(c: ClocksState, ns: number): void {
  assertNs(ns, 'icount warp');
  c.icountBiasNs += ns;
}

/** Convert an instruction count to VIRTUAL ns. @qemu softmmu/icount.c icount_to_ns */
export function icountToNs(c: ClocksState, insns: number): number {
  return insns * 2 ** c.icountShift;
}

/** Round a timeout up to milliseconds as GLib wants it. @qemu util/qemu-timer.c qemu_timeout_ns_to_ms */
export function qemuTimeoutNsToMs(ns: number): number {
  if (ns < 0) return -1;
  if (ns === 0) return 0;
  return Math.min(Math.ceil(ns / SCALE_MS), 0x7fffffff);
}

/** The sooner of two timeouts where negative means infinite. @qemu qemu_soonest_timeout */
export function qemuSoonestTimeout(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}
