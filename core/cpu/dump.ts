// The text of `info registers` for one hart, byte for byte in QEMU 7.2's riscv32 layout.
// Mirrors target/riscv/cpu.c riscv_cpu_dump_state called with CPU_DUMP_FPU. QEMU's default rv32
// hart has S, H, F and D, so its dump lists registers detvm's M-only RV32IMA hart lacks; they
// are printed with the values they have on detvm: zero (and "V = 0": never virtualised).

import { HS_MODE_INTERRUPTS, MSTATUS_MPP } from './cpu-bits.ts';
import type { CpuState } from './cpu.ts';

const INT_REG_NAMES = [
  'x0/zero', 'x1/ra', 'x2/sp', 'x3/gp', 'x4/tp', 'x5/t0', 'x6/t1', 'x7/t2',
  'x8/s0', 'x9/s1', 'x10/a0', 'x11/a1', 'x12/a2', 'x13/a3', 'x14/a4', 'x15/a5',
  'x16/a6', 'x17/a7', 'x18/s2', 'x19/s3', 'x20/s4', 'x21/s5', 'x22/s6', 'x23/s7',
  'x24/s8', 'x25/s9', 'x26/s10', 'x27/s11', 'x28/t3', 'x29/t4', 'x30/t5', 'x31/t6',
];

const FP_REG_NAMES = [
  'f0/ft0', 'f1/ft1', 'f2/ft2', 'f3/ft3', 'f4/ft4', 'f5/ft5', 'f6/ft6', 'f7/ft7',
  'f8/fs0', 'f9/fs1', 'f10/fa0', 'f11/fa1', 'f12/fa2', 'f13/fa3', 'f14/fa4', 'f15/fa5',
  'f16/fa6', 'f17/fa7', 'f18/fs2', 'f19/fs3', 'f20/fs4', 'f21/fs5', 'f22/fs6', 'f23/fs7',
  'f24/fs8', 'f25/fs9', 'f26/fs10', 'f27/fs11', 'f28/ft8', 'f29/ft9', 'f30/ft10', 'f31/ft11',
];

const hex8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');

/**
 * The lines QEMU 7.2's riscv_cpu_dump_state prints for `info registers`, with '\n' line ends
 * (the monitor turns them into "\r\n"). The monitor prints "\nCPU#<index>\n" before this text.
 * Like QEMU 7.2, this has a side effect: the dump's read-modify-write of mideleg (rmw_mideleg64
 * on a hart with the H extension) ORs HS_MODE_INTERRUPTS into it, so the first dump shows
 * mideleg 00000000 and later ones 00001444. detvm reproduces that in `cpu.mideleg`.
 * @qemu target/riscv/cpu.c riscv_cpu_dump_state
 */
export function cpuDumpState(cpu: CpuState): string {
  const midelegShown = cpu.mideleg;
  cpu.mideleg = (cpu.mideleg | HS_MODE_INTERRUPTS) >>> 0;
  const csrs: Array<[string, number]> = [
    ['mhartid', cpu.mhartid],
    ['mstatus', cpu.mstatus | MSTATUS_MPP],
    ['mstatush', 0],
    ['hstatus', 0],
    ['vsstatus', 0],
    ['mip', cpu.mip],
    ['mie', cpu.mie],
    ['mideleg', midelegShown],
    ['hideleg', 0],
    ['medeleg', 0],
    ['hedeleg', 0],
    ['mtvec', cpu.mtvec],
    ['stvec', 0],
    ['vstvec', 0],
    ['mepc', cpu.mepc],
    ['sepc', 0],
    ['vsepc', 0],
    ['mcause', cpu.mcause],
    ['scause', 0],
    ['vscause', 0],
    ['mtval', cpu.mtval],
    ['stval', 0],
    ['htval', 0],
    ['mtval2', 0],
    ['mscratch', cpu.mscratch],
    ['sscratch', 0],
    ['satp', 0],
  ];
  let out = ` ${'V      =  '} ${0}\n`;
  out += ` ${'pc      '} ${hex8(cpu.pc)}\n`;
  for (const [name, v] of csrs) out += ` ${name.padEnd(8)} ${hex8(v)}\n`;
  for (let r = 0; r < 32; r++) {
    out += ` ${INT_REG_NAMES[r]!.padEnd(8)} ${hex8(cpu.x[r]!)}`;
    if ((r & 3) === 3) out += '\n';
  }
  for (let r = 0; r < 32; r++) {
    out += ` ${FP_REG_NAMES[r]!.padEnd(8)} ${'0'.repeat(16)}`;
    if ((r & 3) === 3) out += '\n';
  }
  return out;
}
