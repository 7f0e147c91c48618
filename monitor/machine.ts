// What the monitor needs from the rest of the machine: run states and their transitions, reset
// and shutdown requests, vCPUs (list, register dump, $reg values, memory reads), chardevs and
// ring buffers, version and name. The composition root (index.ts) implements it over the real
// kernel; tests use test/support/fake-machine.ts. The monitor never reaches around it.

import type { RunState } from '../core/system/index.ts';

/** QAPI RunState names (qapi/run-state.json), as the kernel defines them. */
export type RunStateName = RunState;

/** One vCPU as query-cpus-fast reports it. */
export interface MonitorCpuInfo {
  cpuIndex: number;
  qomPath: string;
  threadId: number;
  /** SysEmuTarget, e.g. 'riscv32'. */
  target: string;
  /** CpuInstanceProperties (e.g. { 'core-id': 0 }), omitted when the board has none. */
  props?: Record<string, number | string>;
}

/** One chardev as query-chardev reports it. */
export interface MonitorChardevInfo {
  label: string;
  filename: string;
  frontendOpen: boolean;
}

/** A directory entry for file-name completion. */
export interface MonitorDirEntry {
  name: string;
  isDir: boolean;
}

/**
 * The machine as the monitor sees it. Methods that change state mirror QEMU functions and must
 * have their effects (QAPI events through the kernel's notifier list, run-state changes) at once,
 * as QEMU's do, so that e.g. STOP is emitted before the command's return.
 */
export interface MonitorMachine {
  /** QEMU version reported by query-version and the banners (detvm: 7.2.22). */
  readonly version: { major: number; minor: number; micro: number };
  /** The package string (QEMU_PKGVERSION): "detvm <version>". */
  readonly package: string;
  /** `-name`, or null. @qemu qmp_query_name */
  name(): string | null;
  /** phase_check(PHASE_MACHINE_READY): false only during -preconfig. */
  machineReady(): boolean;
  /** @qemu runstate_get */
  runstate(): RunStateName;
  /** @qemu runstate_is_running */
  runstateIsRunning(): boolean;
  /** @qemu runstate_needs_reset */
  runstateNeedsReset(): boolean;
  /** 7.2's global `singlestep` (query-status field). */
  singlestep(): boolean;
  /** @qemu qemu_system_dump_in_progress */
  dumpInProgress(): boolean;
  /** @qemu vm_stop(RUN_STATE_PAUSED) */
  vmStop(state: RunStateName): void;
  /** @qemu vm_start */
  vmStart(): void;
  /** The `autostart` global (-S clears it; stop/cont during inmigrate set it). */
  setAutostart(on: boolean): void;
  /** blk_iostatus_reset on every backend and block job, then bdrv_activate_all; error text or null. */
  blockResetAndActivateAll(): string | null;
  /** @qemu qemu_system_reset_request (cause e.g. 'host-qmp-system-reset') */
  systemResetRequest(cause: string): void;
  /** qmp_quit: shutdown_action = poweroff, then qemu_system_shutdown_request(cause). */
  systemShutdownRequest(cause: string): void;
  /** vCPUs in CPU_FOREACH order. */
  cpus(): MonitorCpuInfo[];
  /** cpu_dump_state(cs, CPU_DUMP_FPU) text of one vCPU, lines ending in "\n". */
  cpuDumpState(cpuIndex: number): string;
  /**
   * get_monitor_def / target_get_monitor_def: value of register `name` of `cpuIndex`, or null
   * for "unknown register". The raw target value; the monitor applies QEMU's target_long cast.
   */
  getMonitorDef(cpuIndex: number, name: string): bigint | null;
  /** Width of target_long in bits (32 for riscv32). */
  readonly targetLongBits: 32 | 64;
  /** cpu_memory_rw_debug read of guest-virtual memory; null = "Cannot access memory". */
  cpuMemoryRead(cpuIndex: number, addr: bigint, len: number): Uint8Array | null;
  /** address_space_read of guest-physical memory; null = "Cannot access memory". */
  physMemoryRead(addr: bigint, len: number): Uint8Array | null;
  /** query-chardev, in QEMU's order. */
  chardevs(): MonitorChardevInfo[];
  /**
   * qemu_chr_find + CHARDEV_IS_RINGBUF: null if `device` is a ringbuf chardev, else QEMU's text
   * ("Device '%s' not found" or "%s is not a ringbuf device").
   */
  ringbufLookup(device: string): string | null;
  /** ringbuf_chr_write on a device ringbufLookup accepted; false = "Failed to write to device". */
  ringbufWrite(device: string, data: Uint8Array): boolean;
  /** Consume min(size, count) bytes of a ringbuf (ringbuf_chr_read); `size` > 0. */
  ringbufRead(device: string, size: number): Uint8Array;
  /** Snapshot tags for loadvm/delvm completion (empty without snapshot support). */
  snapshotTags(): string[];
  /** Directory listing for file-name completion; null if `dir` cannot be opened. */
  listDirectory(dir: string): MonitorDirEntry[] | null;
  /** QEMU writes some HMP errors with printf to its stdout (get_str's quote errors). */
  hostStdout(text: string): void;
  /** error_report with no current monitor goes to stderr ("qemu-system-riscv32: msg\n"). */
  hostStderr(text: string): void;
}
