// Trap entry for the M-mode-only hart: synchronous exceptions and interrupts, with QEMU 7.2's
// priority among pending interrupts. Mirrors target/riscv/cpu_helper.c riscv_cpu_do_interrupt
// and riscv_cpu_local_irq_pending. Functions return the new pc as an int32 so the interpreter
// can continue without re-reading state.

import {
  IRQ_M_EXT, IRQ_M_SOFT, IRQ_M_TIMER, MCAUSE_INTERRUPT, MSTATUS_MIE, MSTATUS_MPIE,
} from './cpu-bits.ts';
import type { CpuState } from './cpu.ts';

/**
 * Take a trap: mepc = `pc`, mcause, mtval, MPIE = MIE, MIE = 0 (MPP stays M), and jump to mtvec
 * (base + 4 * cause for interrupts in vectored mode). Returns the handler's pc as an int32.
 * @qemu target/riscv/cpu_helper.c riscv_cpu_do_interrupt
 */
export function riscvCpuDoInterrupt(
  cpu: CpuState, cause: number, interrupt: boolean, tval: number, pc: number,
): number {
  const mie = (cpu.mstatus & MSTATUS_MIE) !== 0;
  cpu.mstatus = (cpu.mstatus & ~(MSTATUS_MIE | MSTATUS_MPIE)) | (mie ? MSTATUS_MPIE : 0);
  cpu.mepc = pc >>> 0;
  cpu.mcause = interrupt ? (MCAUSE_INTERRUPT | cause) >>> 0 : cause;
  cpu.mtval = tval >>> 0;
  const base = cpu.mtvec & ~3;
  const vectored = (cpu.mtvec & 3) === 1;
  return (interrupt && vectored ? base + 4 * cause : base) | 0;
}

/** Raise synchronous exception `cause` at `pc`; returns the handler's pc. */
export function raiseException(cpu: CpuState, cause: number, tval: number, pc: number): number {
  return riscvCpuDoInterrupt(cpu, cause, false, tval, pc);
}

/**
 * The interrupt to take from the pending-and-enabled set `pending` (mip & mie, non-zero):
 * MEI, then MSI, then MTI, the spec's (and QEMU 7.2's default) priority.
 */
export function riscvCpuLocalIrqPending(pending: number): number {
  if (pending & (1 << IRQ_M_EXT)) return IRQ_M_EXT;
  if (pending & (1 << IRQ_M_SOFT)) return IRQ_M_SOFT;
  return IRQ_M_TIMER;
}

/**
 * If an enabled interrupt is pending and mstatus.MIE is set, take it with mepc = `pc` (the next
 * instruction) and return the handler's pc; otherwise return `pc` unchanged.
 * @qemu target/riscv/cpu_helper.c riscv_cpu_exec_interrupt
 */
export function riscvCpuExecInterrupt(cpu: CpuState, pc: number): number {
  const pending = cpu.mip & cpu.mie;
  if (pending === 0 || (cpu.mstatus & MSTATUS_MIE) === 0) return pc;
  return riscvCpuDoInterrupt(cpu, riscvCpuLocalIrqPending(pending), true, 0, pc);
}
