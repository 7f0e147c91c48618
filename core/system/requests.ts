// System requests and main_loop_should_exit (softmmu/runstate.c, 7.2). Request setters only set
// a flag and wake the loop; the main loop handles them after each iteration in QEMU's order:
// debug, suspend, shutdown, reset, wakeup, powerdown, vmstop. Events carry QEMU's data, and
// are emitted here, so a QMP command that only requests (quit, system_reset) returns first.

import { qemuNotifyEvent } from '../loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceEvent } from '../trace/index.ts';
import {
  type RunState, type ShutdownCause, runstateCheck, runstateIsRunning, runstateSet, qapiEventSend,
} from './runstate.ts';
import type { SystemMachine } from './system-state.ts';
import { cpuStopCurrent, pauseAllVcpus, resumeAllVcpus, vmStop } from './cpus.ts';

/** @qemu shutdown_caused_by_guest */
export function shutdownCausedByGuest(cause: ShutdownCause): boolean {
  return cause === 'guest-shutdown' || cause === 'guest-reset' || cause === 'guest-panic' || cause === 'snapshot-load';
}

/** @qemu qemu_system_reset_request */
export function qemuSystemResetRequest(m: SystemMachine, cause: ShutdownCause): void {
  traceEvent(m, TRACE_CONTROL, 'qemu_system_reset_request', { cause });
  if (m.sys.rebootAction === 'shutdown' && cause !== 'subsystem-reset') {
    m.sys.requests.shutdown = cause;
  } else {
    m.sys.requests.reset = cause;
  }
  cpuStopCurrent(m);
  qemuNotifyEvent(m);
}

/** @qemu qemu_system_shutdown_request */
export function qemuSystemShutdownRequest(m: SystemMachine, cause: ShutdownCause): void {
  traceEvent(m, TRACE_CONTROL, 'qemu_system_shutdown_request', { cause });
  m.sys.requests.shutdown = cause;
  qemuNotifyEvent(m);
}

/** A host signal asked to terminate (SIGINT/SIGTERM/SIGHUP). @qemu qemu_system_killed */
export function qemuSystemKilled(m: SystemMachine, signal: number, pid: number): void {
  m.sys.requests.shutdownSignal = signal;
  m.sys.requests.shutdownPid = pid;
  m.sys.shutdownAction = 'poweroff';
  m.sys.requests.shutdown = 'host-signal';
  qemuNotifyEvent(m);
}

/**
 * A device ends the process with `code`, as sifive_test's exit() does in QEMU 7.2: no SHUTDOWN
 * event, no further guest instruction (the vCPU stops now), the main loop ends at its next check.
 */
export function qemuSystemExitRequest(m: SystemMachine, code: number): void {
  traceEvent(m, TRACE_CONTROL, 'qemu_system_exit_request', { code });
  m.sys.requests.exit = code;
  cpuStopCurrent(m);
  qemuNotifyEvent(m);
}

/** @qemu qemu_system_powerdown_request */
export function qemuSystemPowerdownRequest(m: SystemMachine): void {
  m.sys.requests.powerdown = true;
  qemuNotifyEvent(m);
}

/** @qemu qemu_system_debug_request */
export function qemuSystemDebugRequest(m: SystemMachine): void {
  m.sys.requests.debug = true;
  qemuNotifyEvent(m);
}

/** @qemu qemu_system_vmstop_request */
export function qemuSystemVmstopRequest(m: SystemMachine, state: RunState): void {
  m.sys.requests.vmstop = state;
  qemuNotifyEvent(m);
}

/**
 * Reset the machine: every registered reset handler, then the RESET event unless the cause is
 * none, subsystem-reset or snapshot-load. @qemu softmmu/runstate.c qemu_system_reset
 */
export function qemuSystemReset(m: SystemMachine, cause: ShutdownCause): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'qemu_system_reset', { cause });
  for (const h of m.sys.resetHandlers) h.fn(cause);
  if (cause !== 'none' && cause !== 'subsystem-reset' && cause !== 'snapshot-load') {
    qapiEventSend(m, 'RESET', { guest: shutdownCausedByGuest(cause), reason: cause });
  }
  traceExit(m, opened, 'qemu_system_reset');
}

/** Register a device reset handler. @qemu qemu_register_reset */
export function qemuRegisterReset(m: SystemMachine, name: string, fn: (cause: ShutdownCause) => void): void {
  m.sys.resetHandlers.push({ name, fn });
}

/** Say which signal ended the VM (no pid: e.g. Ctrl-C at the terminal). @qemu qemu_kill_report */
function qemuKillReport(m: SystemMachine): void {
  const r = m.sys.requests;
  if (r.shutdownSignal === 0) return;
  m.sys.report(r.shutdownPid === 0
    ? `terminating on signal ${r.shutdownSignal}`
    : `terminating on signal ${r.shutdownSignal} from pid ${r.shutdownPid} (<unknown process>)`);
  r.shutdownSignal = 0;
}

/**
 * Handle pending requests in QEMU's order; true means leave the main loop (m.sys.exitStatus
 * holds the status). @qemu softmmu/runstate.c main_loop_should_exit
 */
export function mainLoopShouldExit(m: SystemMachine): boolean {
  const r = m.sys.requests;
  if (r.exit !== null) {
    m.sys.exitStatus = r.exit;
    r.exit = null;
    return true;
  }
  if (r.debug) {
    r.debug = false;
    vmStop(m, 'debug');
  }
  if (r.suspend) {
    r.suspend = false;
    pauseAllVcpus(m);
    runstateSet(m, 'suspended');
    qapiEventSend(m, 'SUSPEND');
  }
  const shutdown = r.shutdown;
  if (shutdown !== null) {
    r.shutdown = null;
    qemuKillReport(m);
    const opened = traceEnter(m, TRACE_CONTROL, 'qemu_system_shutdown', { cause: shutdown });
    qapiEventSend(m, 'SHUTDOWN', { guest: shutdownCausedByGuest(shutdown), reason: shutdown });
    traceExit(m, opened, 'qemu_system_shutdown');
    if (m.sys.shutdownAction === 'pause') {
      vmStop(m, 'shutdown');
    } else {
      return true;
    }
  }
  const reset = r.reset;
  if (reset !== null) {
    r.reset = null;
    pauseAllVcpus(m);
    qemuSystemReset(m, reset);
    resumeAllVcpus(m);
    if (!runstateIsRunning(m) && !runstateCheck(m, 'inmigrate') && !runstateCheck(m, 'finish-migrate')) {
      runstateSet(m, 'prelaunch');
    }
  }
  if (r.wakeup) {
    r.wakeup = false;
    pauseAllVcpus(m);
    runstateSet(m, 'running');
    resumeAllVcpus(m);
    qapiEventSend(m, 'WAKEUP');
  }
  if (r.powerdown) {
    r.powerdown = false;
    qapiEventSend(m, 'POWERDOWN');
  }
  const vmstop = r.vmstop;
  if (vmstop !== null) {
    r.vmstop = null;
    vmStop(m, vmstop);
  }
  return false;
}
