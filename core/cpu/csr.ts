// Control and status registers of the M-mode-only RV32 hart: which exist, which are read-only,
// and their read and write rules (WARL masks, counters derived from icount, `time` from the
// CLINT). Mirrors target/riscv/csr.c (csr_ops, riscv_csrrw). CSRs that exist only with S, H, F
// or debug support are absent here, so accessing them is an illegal-instruction exception.

import {
  CSR_CYCLE, CSR_CYCLEH, CSR_HPMCOUNTER31, CSR_HPMCOUNTER31H, CSR_HPMCOUNTER3, CSR_HPMCOUNTER3H,
  CSR_INSTRET, CSR_INSTRETH, CSR_MARCHID, CSR_MCAUSE, CSR_MCONFIGPTR, CSR_MCOUNTINHIBIT,
  CSR_MCYCLE, CSR_MCYCLEH, CSR_MEPC, CSR_MHARTID, CSR_MHPMCOUNTER31, CSR_MHPMCOUNTER31H,
  CSR_MHPMCOUNTER3, CSR_MHPMCOUNTER3H, CSR_MHPMEVENT3, CSR_MHPMEVENT31, CSR_MIE, CSR_MIMPID,
  CSR_MINSTRET, CSR_MINSTRETH, CSR_MIP, CSR_MISA, CSR_MSCRATCH, CSR_MSTATUS, CSR_MSTATUSH,
  CSR_MTVAL, CSR_MTVEC, CSR_MVENDORID, CSR_PMPADDR0, CSR_PMPADDR15, CSR_PMPCFG0, CSR_PMPCFG3,
  CSR_TIME, CSR_TIMEH, MISA_RV32IMA, MSTATUS_MPP, MSTATUS_WRITABLE, M_MODE_INTERRUPTS,
} from './cpu-bits.ts';
import type { CpuEnv, CpuState } from './cpu.ts';

const TWO32 = 0x1_0000_0000;

function inRange(csr: number, lo: number, hi: number): boolean {
  return csr >= lo && csr <= hi;
}

/**
 * Whether `csr` exists on this hart. Besides the registers with state, these read as zero and
 * ignore writes, which the privileged spec allows: mstatush (no MBE/SBE), mcountinhibit (no
 * inhibit bits), mhpmevent3-31 and mhpmcounter3-31 (no events), pmpcfg0-3 and pmpaddr0-15 (no
 * PMP entries), mconfigptr; misa ignores writes (fixed extensions).
 */
export function csrExists(csr: number): boolean {
  switch (csr) {
    case CSR_MSTATUS: case CSR_MISA: case CSR_MIE: case CSR_MTVEC: case CSR_MSTATUSH:
    case CSR_MCOUNTINHIBIT: case CSR_MSCRATCH: case CSR_MEPC: case CSR_MCAUSE: case CSR_MTVAL:
    case CSR_MIP: case CSR_MCYCLE: case CSR_MINSTRET: case CSR_MCYCLEH: case CSR_MINSTRETH:
    case CSR_CYCLE: case CSR_TIME: case CSR_INSTRET: case CSR_CYCLEH: case CSR_TIMEH:
    case CSR_INSTRETH: case CSR_MVENDORID: case CSR_MARCHID: case CSR_MIMPID: case CSR_MHARTID:
    case CSR_MCONFIGPTR:
      return true;
    default:
      return (
        inRange(csr, CSR_MHPMEVENT3, CSR_MHPMEVENT31) ||
        inRange(csr, CSR_MHPMCOUNTER3, CSR_MHPMCOUNTER31) ||
        inRange(csr, CSR_MHPMCOUNTER3H, CSR_MHPMCOUNTER31H) ||
        inRange(csr, CSR_HPMCOUNTER3, CSR_HPMCOUNTER31) ||
        inRange(csr, CSR_HPMCOUNTER3H, CSR_HPMCOUNTER31H) ||
        inRange(csr, CSR_PMPCFG0, CSR_PMPCFG3) ||
        inRange(csr, CSR_PMPADDR0, CSR_PMPADDR15)
      );
  }
}

/** CSR addresses with bits [11:10] = 3 are read-only by the spec's convention. */
export function csrIsReadOnly(csr: number): boolean {
  return (csr >>> 10) === 3;
}

/** (icount + offset) mod 2^64, high or low half. */
function counterRead(icount: number, offHi: number, offLo: number, high: boolean): number {
  const lo = (icount % TWO32) + offLo;
  if (!high) return lo % TWO32;
  const hi = Math.floor(icount / TWO32) + offHi + (lo >= TWO32 ? 1 : 0);
  return hi % TWO32;
}

/** The offset that makes the counter read `hi:lo` now: (value - icount) mod 2^64 as halves. */
function counterOffset(icount: number, hi: number, lo: number): [number, number] {
  const icLo = icount % TWO32;
  const icHi = Math.floor(icount / TWO32);
  let offLo = lo - icLo;
  let borrow = 0;
  if (offLo < 0) {
    offLo += TWO32;
    borrow = 1;
  }
  const offHi = (((hi - icHi - borrow) % TWO32) + TWO32) % TWO32;
  return [offHi, offLo];
}

/** The counter's new [hi, lo] when one half is written with `value` and the other kept. */
function counterHalvesAfterWrite(
  icount: number, offHi: number, offLo: number, high: boolean, value: number,
): [number, number] {
  const hi = high ? value : counterRead(icount, offHi, offLo, true);
  const lo = high ? counterRead(icount, offHi, offLo, false) : value;
  return [hi, lo];
}

/**
 * Read an existing CSR (check csrExists first). Returns its value as an unsigned 32-bit number.
 * `cpu.icount` must be up to date (it includes the instruction doing the read).
 * @qemu target/riscv/csr.c riscv_csrrw (read half)
 */
export function csrRead(cpu: CpuState, env: CpuEnv, csr: number): number {
  switch (csr) {
    case CSR_MSTATUS: return (cpu.mstatus | MSTATUS_MPP) >>> 0;
    case CSR_MISA: return MISA_RV32IMA;
    case CSR_MIE: return cpu.mie >>> 0;
    case CSR_MIP: return cpu.mip >>> 0;
    case CSR_MTVEC: return cpu.mtvec >>> 0;
    case CSR_MSCRATCH: return cpu.mscratch >>> 0;
    case CSR_MEPC: return cpu.mepc >>> 0;
    case CSR_MCAUSE: return cpu.mcause >>> 0;
    case CSR_MTVAL: return cpu.mtval >>> 0;
    case CSR_MHARTID: return cpu.mhartid >>> 0;
    case CSR_MCYCLE: case CSR_CYCLE:
      return counterRead(cpu.icount, cpu.mcycleOffsetHi, cpu.mcycleOffsetLo, false);
    case CSR_MCYCLEH: case CSR_CYCLEH:
      return counterRead(cpu.icount, cpu.mcycleOffsetHi, cpu.mcycleOffsetLo, true);
    case CSR_MINSTRET: case CSR_INSTRET:
      return counterRead(cpu.icount, cpu.minstretOffsetHi, cpu.minstretOffsetLo, false);
    case CSR_MINSTRETH: case CSR_INSTRETH:
      return counterRead(cpu.icount, cpu.minstretOffsetHi, cpu.minstretOffsetLo, true);
    case CSR_TIME: return env.readTime() % TWO32;
    case CSR_TIMEH: return Math.floor(env.readTime() / TWO32) % TWO32;
    default: return 0; // the read-as-zero registers listed in csrExists
  }
}

/**
 * Write an existing, writable CSR (check csrExists and csrIsReadOnly first) with WARL rules:
 * mstatus keeps MIE/MPIE, mie keeps MSIE/MTIE/MEIE, mtvec ignores reserved modes >= 2 (as QEMU
 * 7.2 does), mip ignores writes (all its M-mode bits are driven by devices), mepc/mcause/mtval/
 * mscratch take any value (QEMU 7.2 stores mepc unmasked; mret then checks its alignment).
 * @qemu target/riscv/csr.c riscv_csrrw (write half)
 */
export function csrWrite(cpu: CpuState, csr: number, value: number): void {
  value >>>= 0;
  switch (csr) {
    case CSR_MSTATUS: cpu.mstatus = value & MSTATUS_WRITABLE; return;
    case CSR_MIE: cpu.mie = value & M_MODE_INTERRUPTS; return;
    case CSR_MTVEC: if ((value & 3) < 2) cpu.mtvec = value; return;
    case CSR_MSCRATCH: cpu.mscratch = value; return;
    case CSR_MEPC: cpu.mepc = value; return;
    case CSR_MCAUSE: cpu.mcause = value; return;
    case CSR_MTVAL: cpu.mtval = value; return;
    case CSR_MCYCLE: case CSR_MCYCLEH: {
      const [hi, lo] = counterHalvesAfterWrite(cpu.icount, cpu.mcycleOffsetHi, cpu.mcycleOffsetLo,
        csr === CSR_MCYCLEH, value);
      [cpu.mcycleOffsetHi, cpu.mcycleOffsetLo] = counterOffset(cpu.icount, hi, lo);
      return;
    }
    case CSR_MINSTRET: case CSR_MINSTRETH: {
      const [hi, lo] = counterHalvesAfterWrite(cpu.icount, cpu.minstretOffsetHi,
        cpu.minstretOffsetLo, csr === CSR_MINSTRETH, value);
      [cpu.minstretOffsetHi, cpu.minstretOffsetLo] = counterOffset(cpu.icount, hi, lo);
      return;
    }
    default: return; // misa, mip, mstatush and the read-as-zero registers ignore writes
  }
}
