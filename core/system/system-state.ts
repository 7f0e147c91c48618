// The system part of the machine (softmmu/cpus.c, runstate.c, the TCG RR thread): vCPU wrappers
// with QEMU's per-CPU flags, the request flags of main_loop_should_exit, and the hooks through
// which devices (reset handlers) and the block layer (drain/flush at stop) take part.
// Invariant: `currentCpu` is non-null exactly while a vCPU executes guest code (QEMU's
// current_cpu on the vCPU thread), which is how vm_stop knows it is "on a vCPU thread".

import type { CpuEnv, CpuState } from '../cpu/index.ts';
import type { ClocksState, QEMUTimer } from '../loop/index.ts';
import type { RunState, RunstateMachine, ShutdownCause } from './runstate.ts';

/** A run_on_cpu work item (queued work makes a CPU thread not idle). */
export interface CpuWorkItem {
  name: string;
  fn: () => void;
}

/** A vCPU: the target CPU state plus QEMU's CPUState flags (include/hw/core/cpu.h). */
export interface Vcpu {
  cpu: CpuState;
  /** Stop requested (pause_all_vcpus / cpu_pause). */
  stop: boolean;
  /** The vCPU acknowledged the stop at its slice boundary (qemu_cpu_stop). */
  stopped: boolean;
  threadKicked: boolean;
  work: CpuWorkItem[];
  /** Host thread id shown by `info cpus` (deterministic: a fixed base plus the index). */
  threadId: number;
}

/** Block-layer hooks called where do_vm_stop calls bdrv_drain_all / bdrv_flush_all. */
export interface BlockHooks {
  drainAll: () => void;
  /** Returns 0 or a negative errno. */
  flushAll: () => number;
  /** blk_iostatus_reset on every backend, then bdrv_activate_all (qmp_cont); error text or null. */
  activateAll: () => string | null;
}

export type ShutdownAction = 'poweroff' | 'pause';
export type RebootAction = 'reset' | 'shutdown';

export interface SystemRequests {
  reset: ShutdownCause | null;
  shutdown: ShutdownCause | null;
  shutdownSignal: number;
  shutdownPid: number;
  powerdown: boolean;
  debug: boolean;
  suspend: boolean;
  wakeup: boolean;
  vmstop: RunState | null;
  /** exit(code) from a device (sifive_test), taken at the next main_loop_should_exit. */
  exit: number | null;
}

export interface SystemState {
  vcpus: Vcpu[];
  env: CpuEnv | null;
  /** The vCPU executing guest code right now (QEMU current_cpu on the vCPU thread). */
  currentCpu: Vcpu | null;
  /** rr_current_cpu: the CPU the kick timer kicks. */
  rrCurrentCpu: Vcpu | null;
  /** The `cpu` variable of rr_cpu_thread_fn: where the next round starts (index), or null. */
  rrNextCpu: number | null;
  /** The RR thread passed its initial wait for first_cpu->stopped to clear. */
  rrStarted: boolean;
  /** The RR thread sleeps in rr_wait_io_event (all CPU threads idle). */
  rrWaiting: boolean;
  kickTimer: QEMUTimer | null;
  /** VIRTUAL deadline at the last poll's prepare (icount warp cap), or -1. */
  warpDeadlineNs: number;
  /** Live mode: REALTIME when every vCPU went idle (the warp timer's start), or null. */
  warpStartNs: number | null;
  /**
   * Most instructions one vCPU runs per turn (null: as icount allows). Live mode caps it so the
   * main loop, and Node's event loop behind it, get a turn every few milliseconds.
   */
  maxSliceInsns: number | null;
  /**
   * Told of every vCPU slice (the replay debugger: its timeline, and a seek stopping a slice at
   * an exact instruction count by throwing from `start`), or null. `start` runs once the slice's
   * counter is in clocks.icountRunning, `end` before it is cleared.
   */
  sliceObserver: SliceObserver | null;
  requests: SystemRequests;
  shutdownAction: ShutdownAction;
  rebootAction: RebootAction;
  /** Start the VM when machine init is done (false with -S). */
  autostart: boolean;
  resetHandlers: { name: string; fn: (cause: ShutdownCause) => void }[];
  block: BlockHooks;
  /** Exit status of the main loop once a shutdown left it. */
  exitStatus: number;
  /** Where error_report output goes ("terminating on signal 2"); the composition root sets it. */
  report: (msg: string) => void;
}

export type IcountRunning = NonNullable<ClocksState['icountRunning']>;

export interface SliceObserver {
  start: (run: IcountRunning) => void;
  end: (run: IcountRunning) => void;
}

/** The machine as the system layer sees it. */
export interface SystemMachine extends RunstateMachine {
  sys: SystemState;
}

export const VCPU_THREAD_ID_BASE = 1000;

export function systemStateCreate(): SystemState {
  return {
    vcpus: [],
    env: null,
    currentCpu: null,
    rrCurrentCpu: null,
    rrNextCpu: null,
    rrStarted: false,
    rrWaiting: false,
    kickTimer: null,
    warpDeadlineNs: -1,
    warpStartNs: null,
    maxSliceInsns: null,
    sliceObserver: null,
    requests: {
      reset: null, shutdown: null, shutdownSignal: 0, shutdownPid: 0, powerdown: false, debug: false,
      suspend: false, wakeup: false, vmstop: null, exit: null,
    },
    shutdownAction: 'poweroff',
    rebootAction: 'reset',
    autostart: true,
    resetHandlers: [],
    block: { drainAll: () => {}, flushAll: () => 0, activateAll: () => null },
    exitStatus: 0,
    report: () => {},
  };
}

/** Wrap a CPU as a vCPU; it starts stopped, as QEMU's vCPUs do before the first vm_start. */
export function vcpuCreate(cpu: CpuState): Vcpu {
  return { cpu, stop: false, stopped: true, threadKicked: false, work: [], threadId: VCPU_THREAD_ID_BASE + cpu.cpuIndex };
}
