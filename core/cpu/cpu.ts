// The RV32IMA hart as plain data (CpuState) and its life-cycle functions: create, reset, interrupt
// lines, save/load. Mirrors target/riscv/cpu.c (riscv_cpu_reset_hold, riscv_cpu_set_irq,
// riscv_cpu_has_work) and machine.c (vmstate_riscv_cpu). The step function is in exec.ts.
// Invariant: everything in CpuState is plain data; the decode cache lives in the address space.

import { assert } from '../util/index.ts';
import { ramAddReservationHolder, type AddressSpace } from '../memory/index.ts';
import {
  IRQ_M_EXT, IRQ_M_SOFT, IRQ_M_TIMER, MSTATUS_MIE, MSTATUS_WRITABLE,
} from './cpu-bits.ts';

/**
 * One hart. Registers hold 32-bit values; `x` holds them as int32 (two's complement), the CSR
 * fields as unsigned numbers. mstatus keeps only its writable bits (MIE, MPIE); MPP reads as 3.
 */
export interface CpuState {
  /** QEMU cpu_index: the position in the machine's CPU list (`info cpus` "CPU #n"). */
  cpuIndex: number;
  /** Program counter, 0 .. 2^32-1. */
  pc: number;
  /** x0..x31; x0 is always 0. */
  x: Int32Array;
  mhartid: number;
  mstatus: number;
  mie: number;
  /** Pending interrupts: MSIP/MTIP/MEIP, driven only by devices through cpuSetIrqLevel. */
  mip: number;
  mtvec: number;
  mepc: number;
  mcause: number;
  mtval: number;
  mscratch: number;
  /** mcycle = icount + this offset, mod 2^64, kept as two uint32 halves (writes move it). */
  mcycleOffsetHi: number;
  mcycleOffsetLo: number;
  minstretOffsetHi: number;
  minstretOffsetLo: number;
  /**
   * Instructions executed by this hart (retired or trapping), the unit of its icount budget;
   * mcycle and minstret count it. During cpuExec it is brought up to date (including the
   * instruction being executed) before every out-of-line access: MMIO/ROM/misaligned loads and
   * stores, CSR, atomic and system instructions. So a device callback may read it, as QEMU's
   * icount is exact at I/O.
   */
  icount: number;
  /** Address held by LR.W, or -1. Broken by SC and by any RAM store overlapping it. */
  resvAddr: number;
  /** Set by WFI while no enabled interrupt is pending (QEMU CPUState.halted). */
  halted: boolean;
  /** QEMU cpu->exit_request: end the current slice at the next block boundary. Not saved. */
  exitRequest: boolean;
  /** pc after reset (QEMU env->resetvec). */
  resetVector: number;
  /**
   * The mideleg that QEMU 7.2's `info registers` shows: 0 until the first dump, then
   * HS_MODE_INTERRUPTS, because the dump's read-modify-write of mideleg ORs them in on a hart
   * with the H extension. detvm harts have no S-mode, so the guest cannot access it.
   */
  mideleg: number;
}

/** Saved form of a CpuState: JSON-safe plain data (everything but exitRequest, which is not saved). */
export type CpuSavedState = Omit<CpuState, 'x' | 'exitRequest'> & { name: 'riscv-cpu'; version: 1; x: number[] };

/**
 * What cpuExec needs from outside the CPU: the address space and the machine timer. Runtime
 * wiring, not state; one env may serve every hart of a machine.
 */
export interface CpuEnv {
  as: AddressSpace;
  /**
   * The CLINT's mtime: 10 MHz ticks of the VIRTUAL clock, a non-negative safe integer. Read by
   * the `time`/`timeh` CSRs (QEMU env->rdtime_fn).
   */
  readTime(): number;
  /** Run hot code as compiled blocks (translate.ts); default true. Never changes results. */
  jit?: boolean;
}

/** Create a hart with index `cpuIndex` (mhartid is the same) that will start at `resetVector`. */
export function cpuCreate(cpuIndex: number, resetVector: number): CpuState {
  assert(Number.isInteger(cpuIndex) && cpuIndex >= 0, `bad cpu index ${cpuIndex}`);
  return {
    cpuIndex,
    pc: resetVector >>> 0,
    x: new Int32Array(32),
    mhartid: cpuIndex,
    mstatus: 0,
    mie: 0,
    mip: 0,
    mtvec: 0,
    mepc: 0,
    mcause: 0,
    mtval: 0,
    mscratch: 0,
    mcycleOffsetHi: 0,
    mcycleOffsetLo: 0,
    minstretOffsetHi: 0,
    minstretOffsetLo: 0,
    icount: 0,
    resvAddr: -1,
    halted: false,
    exitRequest: false,
    resetVector: resetVector >>> 0,
    mideleg: 0,
  };
}

/**
 * Build the environment the harts of one machine run in, and register them as reservation
 * holders so a store by any of them (or by a device) breaks the others' LR reservations.
 */
export function cpuEnvCreate(as: AddressSpace, readTime: () => number, cpus: CpuState[]): CpuEnv {
  for (const cpu of cpus) ramAddReservationHolder(as, cpu);
  return { as, readTime };
}

/**
 * Reset the hart as QEMU 7.2 does: pc to the reset vector, mstatus.MIE cleared, mcause 0, the
 * reservation dropped, not halted. Like QEMU, x registers and the other CSRs keep their values
 * (firmware must not rely on them), and mip is left to the devices, whose reset lowers their lines.
 * @qemu target/riscv/cpu.c riscv_cpu_reset_hold
 */
export function cpuReset(cpu: CpuState): void {
  cpu.pc = cpu.resetVector;
  cpu.mstatus &= ~MSTATUS_MIE;
  cpu.mcause = 0;
  cpu.resvAddr = -1;
  cpu.halted = false;
  cpu.exitRequest = false;
}

/**
 * Raise or lower interrupt line `irq` (IRQ_M_SOFT, IRQ_M_TIMER or IRQ_M_EXT) of the hart: sets or
 * clears that bit of mip. A running hart notices at its next block boundary (cpuExec re-checks
 * interrupts after every MMIO access); a halted one wakes at its next cpuExec if the interrupt is
 * enabled in mie. The caller decides whether to kick the scheduler (cpuExit).
 * @qemu target/riscv/cpu.c riscv_cpu_set_irq (riscv_cpu_update_mip)
 */
export function cpuSetIrqLevel(cpu: CpuState, irq: number, level: boolean | number): void {
  assert(irq === IRQ_M_SOFT || irq === IRQ_M_TIMER || irq === IRQ_M_EXT, `unknown irq ${irq}`);
  if (level) cpu.mip |= 1 << irq;
  else cpu.mip &= ~(1 << irq);
}

/**
 * Whether a halted hart should run again: some interrupt is both pending and enabled in mie,
 * regardless of mstatus.MIE (WFI's wake-up rule).
 * @qemu target/riscv/cpu.c riscv_cpu_has_work
 */
export function cpuHasWork(cpu: CpuState): boolean {
  return (cpu.mip & cpu.mie) !== 0;
}

/** Ask the hart to leave cpuExec at its next block boundary. @qemu cpu-exec.c cpu_exit */
export function cpuExit(cpu: CpuState): void {
  cpu.exitRequest = true;
}

/** The hart's pc, for `info cpus` and QMP query-cpus-fast. */
export function cpuGetPc(cpu: CpuState): number {
  return cpu.pc;
}

/** Snapshot the hart (not exitRequest, which belongs to the running slice). */
export function cpuSaveState(cpu: CpuState): CpuSavedState {
  return {
    name: 'riscv-cpu', version: 1,
    cpuIndex: cpu.cpuIndex, pc: cpu.pc, x: Array.from(cpu.x), mhartid: cpu.mhartid,
    mstatus: cpu.mstatus, mie: cpu.mie, mip: cpu.mip, mtvec: cpu.mtvec, mepc: cpu.mepc,
    mcause: cpu.mcause, mtval: cpu.mtval, mscratch: cpu.mscratch,
    mcycleOffsetHi: cpu.mcycleOffsetHi, mcycleOffsetLo: cpu.mcycleOffsetLo,
    minstretOffsetHi: cpu.minstretOffsetHi, minstretOffsetLo: cpu.minstretOffsetLo,
    icount: cpu.icount, resvAddr: cpu.resvAddr, halted: cpu.halted,
    resetVector: cpu.resetVector, mideleg: cpu.mideleg,
  };
}

const U32_FIELDS = [
  'pc', 'mhartid', 'mstatus', 'mie', 'mip', 'mtvec', 'mepc', 'mcause', 'mtval', 'mscratch',
  'mcycleOffsetHi', 'mcycleOffsetLo', 'minstretOffsetHi', 'minstretOffsetLo', 'resetVector',
  'mideleg',
] as const;

/**
 * Load a snapshot into an existing hart, in place (so the address space's reservation-holder
 * list stays valid). Throws an Error on a section of another name or version, or bad values;
 * nothing is changed then.
 */
export function cpuLoadState(cpu: CpuState, saved: CpuSavedState): void {
  if (saved.name !== 'riscv-cpu' || saved.version !== 1) {
    throw new Error(
      `cpu state: cannot load ${String(saved.name)} version ${String(saved.version)} ` +
        '(supported: riscv-cpu version 1)',
    );
  }
  for (const f of U32_FIELDS) {
    const v = saved[f];
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff)) {
      throw new Error(`cpu state: ${f} = ${String(v)} is not a uint32`);
    }
  }
  const xs = saved.x;
  if (!Array.isArray(xs) || xs.length !== 32 || !xs.every((v) => Number.isInteger(v))) {
    throw new Error('cpu state: x must be 32 integers');
  }
  if (!(Number.isSafeInteger(saved.icount) && saved.icount >= 0)) {
    throw new Error(`cpu state: bad icount ${saved.icount}`);
  }
  if (!(Number.isInteger(saved.cpuIndex) && saved.cpuIndex >= 0)) {
    throw new Error(`cpu state: bad cpuIndex ${saved.cpuIndex}`);
  }
  const r = saved.resvAddr;
  if (!(r === -1 || (Number.isInteger(r) && r >= 0 && r <= 0xffff_ffff))) {
    throw new Error(`cpu state: bad resvAddr ${saved.resvAddr}`);
  }
  for (const f of U32_FIELDS) cpu[f] = saved[f];
  cpu.cpuIndex = saved.cpuIndex;
  cpu.x.set(saved.x.map((v) => v | 0));
  cpu.x[0] = 0;
  cpu.mstatus &= MSTATUS_WRITABLE;
  cpu.icount = saved.icount;
  cpu.resvAddr = saved.resvAddr;
  cpu.halted = saved.halted === true;
  cpu.exitRequest = false;
}
