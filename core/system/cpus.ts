// vCPU pause/resume and VM start/stop (softmmu/cpus.c, 7.2). One thread runs the main loop and
// the round-robin vCPU "thread" (tcg-rr.ts) in turn, so where QEMU's main thread waits on
// qemu_pause_cond for the vCPU thread to acknowledge a stop, detvm lets the RR thread take its
// turn right there (rrThreadTurn) until every vCPU has stopped; the acknowledgement still
// happens where QEMU does it, in qemu_wait_io_event_common at the slice boundary.

import { assert } from '../util/index.ts';
import {
  QEMU_CLOCK_VIRTUAL, cpuDisableTicks, cpuEnableTicks, qemuClockEnable, qemuNotifyEvent,
} from '../loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceSpan } from '../trace/index.ts';
import { cpuExit, cpuHasWork } from '../cpu/index.ts';
import {
  type RunState, runstateIsRunning, runstateSet, vmStateNotify, qapiEventSend,
} from './runstate.ts';
import type { SystemMachine, Vcpu } from './system-state.ts';
import { rrThreadTurn } from './tcg-rr.ts';

/** @qemu cpu_is_stopped */
export function cpuIsStopped(m: SystemMachine, v: Vcpu): boolean {
  return v.stopped || !runstateIsRunning(m);
}

/** @qemu cpu_can_run */
export function cpuCanRun(m: SystemMachine, v: Vcpu): boolean {
  return !v.stop && !cpuIsStopped(m, v);
}

/** @qemu cpu_thread_is_idle */
export function cpuThreadIsIdle(m: SystemMachine, v: Vcpu): boolean {
  if (v.stop || v.work.length > 0) return false;
  if (cpuIsStopped(m, v)) return true;
  if (!v.cpu.halted || cpuHasWork(v.cpu)) return false;
  return true;
}

/** @qemu all_cpu_threads_idle */
export function allCpuThreadsIdle(m: SystemMachine): boolean {
  for (const v of m.sys.vcpus) if (!cpuThreadIsIdle(m, v)) return false;
  return true;
}

/** @qemu all_vcpus_paused */
export function allVcpusPaused(m: SystemMachine): boolean {
  for (const v of m.sys.vcpus) if (!v.stopped) return false;
  return true;
}

/**
 * Kick a vCPU: in the round-robin scheduler every vCPU gets an exit request (rr_kick_vcpu_thread),
 * and the RR thread is woken (halt_cond) through the main loop.
 * @qemu softmmu/cpus.c qemu_cpu_kick
 */
export function qemuCpuKick(m: SystemMachine, v: Vcpu): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'qemu_cpu_kick', { cpu: v.cpu.cpuIndex });
  for (const other of m.sys.vcpus) cpuExit(other.cpu);
  // qemu_cond_broadcast(halt_cond) needs no counterpart: the RR thread re-checks idleness at its
  // next turn, after the next main-loop iteration, whose poll does not sleep while a vCPU can
  // run (rrPollTimeout).
  traceExit(m, opened, 'qemu_cpu_kick');
}

/** Acknowledge a stop on the vCPU's own thread. @qemu softmmu/cpus.c qemu_cpu_stop */
export function qemuCpuStop(m: SystemMachine, v: Vcpu, exit: boolean): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'qemu_cpu_stop', { cpu: v.cpu.cpuIndex });
  assert(m.sys.currentCpu === null || m.sys.currentCpu === v, `qemu_cpu_stop of cpu ${v.cpu.cpuIndex} from another vCPU`);
  v.stop = false;
  v.stopped = true;
  if (exit) cpuExit(v.cpu);
  traceExit(m, opened, 'qemu_cpu_stop');
}

/** @qemu cpu_stop_current */
export function cpuStopCurrent(m: SystemMachine): void {
  const v = m.sys.currentCpu;
  if (v) qemuCpuStop(m, v, true);
}

/** The slice boundary: acknowledge a stop, run queued work. @qemu qemu_wait_io_event_common */
export function qemuWaitIoEventCommon(m: SystemMachine, v: Vcpu): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'qemu_wait_io_event_common', { cpu: v.cpu.cpuIndex });
  v.threadKicked = false;
  if (v.stop) qemuCpuStop(m, v, false);
  const work = v.work;
  for (let i = 0; i < 1000 && work.length > 0; i++) {
    const item = work.shift()!;
    traceSpan(m, TRACE_CONTROL, item.name, undefined, item.fn);
  }
  traceExit(m, opened, 'qemu_wait_io_event_common');
}

/** Queue work for a vCPU; it runs at its next slice boundary. @qemu async_run_on_cpu */
export function asyncRunOnCpu(m: SystemMachine, v: Vcpu, name: string, fn: () => void): void {
  v.work.push({ name, fn });
  qemuCpuKick(m, v);
}

/** Let the RR thread run until every vCPU acknowledged its stop (qemu_pause_cond wait). */
function waitAllPaused(m: SystemMachine): void {
  for (let i = 0; !allVcpusPaused(m); i++) {
    assert(i < 8, `pause_all_vcpus: vCPUs did not stop after ${i} RR turns`);
    rrThreadTurn(m);
    for (const v of m.sys.vcpus) if (!v.stopped) qemuCpuKick(m, v);
  }
}

/** @qemu softmmu/cpus.c pause_all_vcpus */
export function pauseAllVcpus(m: SystemMachine): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'pause_all_vcpus');
  qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, false);
  for (const v of m.sys.vcpus) {
    if (m.sys.currentCpu === v) {
      qemuCpuStop(m, v, true);
    } else {
      v.stop = true;
      qemuCpuKick(m, v);
    }
  }
  if (m.sys.currentCpu === null) waitAllPaused(m);
  traceExit(m, opened, 'pause_all_vcpus');
}

/** @qemu cpu_pause */
export function cpuPause(m: SystemMachine, v: Vcpu): void {
  if (m.sys.currentCpu === v) {
    qemuCpuStop(m, v, true);
    return;
  }
  v.stop = true;
  qemuCpuKick(m, v);
}

/** @qemu cpu_resume */
export function cpuResume(m: SystemMachine, v: Vcpu): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'cpu_resume', { cpu: v.cpu.cpuIndex });
  v.stop = false;
  v.stopped = false;
  qemuCpuKick(m, v);
  traceExit(m, opened, 'cpu_resume');
}

/** Only while running: enable VIRTUAL and resume every vCPU. @qemu resume_all_vcpus */
export function resumeAllVcpus(m: SystemMachine): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'resume_all_vcpus');
  if (runstateIsRunning(m)) {
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    for (const v of m.sys.vcpus) cpuResume(m, v);
  }
  traceExit(m, opened, 'resume_all_vcpus');
}

/**
 * Stop the VM (7.2): only when running does it change state, freeze VIRTUAL, pause the vCPUs,
 * notify handlers and (with sendStop) emit STOP; drain and flush always run.
 * Returns bdrv_flush_all's result. @qemu softmmu/cpus.c do_vm_stop
 */
export function doVmStop(m: SystemMachine, state: RunState, sendStop: boolean): number {
  const opened = traceEnter(m, TRACE_CONTROL, 'do_vm_stop', { state });
  if (runstateIsRunning(m)) {
    runstateSet(m, state);
    cpuDisableTicks(m.clocks);
    pauseAllVcpus(m);
    vmStateNotify(m, false, state);
    if (sendStop) qapiEventSend(m, 'STOP');
  }
  traceSpan(m, TRACE_CONTROL, 'bdrv_drain_all', undefined, () => m.sys.block.drainAll());
  const ret = traceSpan(m, TRACE_CONTROL, 'bdrv_flush_all', undefined, () => m.sys.block.flushAll());
  traceExit(m, opened, 'do_vm_stop');
  return ret;
}

/**
 * Stop the VM. From a vCPU (a device callback during guest execution) this becomes a request the
 * main loop handles, and the current vCPU stops at once. @qemu softmmu/cpus.c vm_stop
 */
export function vmStop(m: SystemMachine, state: RunState): number {
  const opened = traceEnter(m, TRACE_CONTROL, 'vm_stop', { state });
  let ret = 0;
  if (m.sys.currentCpu !== null) {
    m.sys.requests.vmstop = state;
    qemuNotifyEvent(m);
    cpuStopCurrent(m);
  } else {
    ret = doVmStop(m, state, true);
  }
  traceExit(m, opened, 'vm_stop');
  return ret;
}

/** Enter `state` even when not running (migration). @qemu vm_stop_force_state */
export function vmStopForceState(m: SystemMachine, state: RunState): number {
  if (runstateIsRunning(m)) return vmStop(m, state);
  runstateSet(m, state);
  m.sys.block.drainAll();
  return m.sys.block.flushAll();
}

/**
 * Returns 0 when the caller must resume the vCPUs, -1 when already running. The RESUME event
 * precedes the state change and the handlers. @qemu softmmu/cpus.c vm_prepare_start (7.2)
 */
export function vmPrepareStart(m: SystemMachine): number {
  const opened = traceEnter(m, TRACE_CONTROL, 'vm_prepare_start');
  let ret: number;
  const requested = m.sys.requests.vmstop;
  m.sys.requests.vmstop = null;
  if (runstateIsRunning(m)) {
    if (requested !== null) {
      // A stop was requested from a vCPU and not yet handled: report it, then the resume.
      qapiEventSend(m, 'STOP');
      qapiEventSend(m, 'RESUME');
    }
    ret = -1;
  } else {
    qapiEventSend(m, 'RESUME');
    cpuEnableTicks(m.clocks);
    runstateSet(m, 'running');
    vmStateNotify(m, true, 'running');
    ret = 0;
  }
  traceExit(m, opened, 'vm_prepare_start');
  return ret;
}

/** @qemu softmmu/cpus.c vm_start */
export function vmStart(m: SystemMachine): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'vm_start');
  if (vmPrepareStart(m) === 0) resumeAllVcpus(m);
  traceExit(m, opened, 'vm_start');
}

/** Stop without a STOP event, at exit. @qemu vm_shutdown */
export function vmShutdown(m: SystemMachine): number {
  return doVmStop(m, 'shutdown', false);
}
