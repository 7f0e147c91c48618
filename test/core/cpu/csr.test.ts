// Zicsr: read/write/set/clear semantics (rs1 = x0 does not write, rd = x0 does not read), WARL
// masks of the M-mode CSRs, counters derived from icount, `time` from the environment, and
// illegal-instruction traps for missing CSRs and writes to read-only ones (mtval = the bits).
// Method: hand-encoded programs run to WFI.
import { describe, expect, it } from 'vitest';
import { MISA_RV32IMA } from '../../../core/cpu/index.ts';
import * as A from './asm.ts';
import { RAM, runProgram, s32, u32 } from './support.ts';

const { R } = A;
const MSTATUS = 0x300,
  MISA = 0x301,
  MIE = 0x304,
  MTVEC = 0x305,
  MSCRATCH = 0x340,
  MEPC = 0x341;
const MIP = 0x344,
  MCYCLE = 0xb00,
  MINSTRET = 0xb02,
  MCYCLEH = 0xb80,
  CYCLE = 0xc00,
  TIME = 0xc01;
const TIMEH = 0xc81,
  INSTRET = 0xc02,
  MHARTID = 0xf14,
  MVENDORID = 0xf11,
  SATP = 0x180;

/** Run `body` with mtvec pointing at a WFI just after it; returns the rig. */
function prog(body: number[], setup?: Parameters<typeof runProgram>[1]) {
  const handler = RAM + 4 * (body.length + 3);
  return runProgram(
    [...A.li(R.t6, handler), A.csrrw(R.zero, MTVEC, R.t6), ...body, A.wfi(), A.wfi()],
    setup,
  );
}

describe('CSR instructions', () => {
  it('CSRRW swaps, CSRRS sets, CSRRC clears, returning the old value', () => {
    const rig = prog([
      ...A.li(R.a0, 0x1234),
      A.csrrw(R.a1, MSCRATCH, R.a0),
      A.addi(R.a2, R.zero, 0xf0),
      A.csrrs(R.a3, MSCRATCH, R.a2),
      A.addi(R.a2, R.zero, 0x34),
      A.csrrc(R.a4, MSCRATCH, R.a2),
      A.csrrs(R.a5, MSCRATCH, R.zero),
    ]);
    expect([s32(rig, R.a1), s32(rig, R.a3), s32(rig, R.a4), s32(rig, R.a5)]).toEqual([
      0, 0x1234, 0x12f4, 0x12c0,
    ]);
  });
  it('has immediate forms with a 5-bit zero-extended uimm', () => {
    const rig = prog([
      A.csrrwi(R.zero, MSCRATCH, 31),
      A.csrrsi(R.a0, MSCRATCH, 0),
      A.csrrci(R.a1, MSCRATCH, 1),
      A.csrrs(R.a2, MSCRATCH, R.zero),
    ]);
    expect([s32(rig, R.a0), s32(rig, R.a1), s32(rig, R.a2)]).toEqual([31, 31, 30]);
  });
  it('reads read-only CSRs with CSRRS/CSRRC x0 and CSRRSI/CSRRCI 0 (no write, no trap)', () => {
    const rig = prog(
      [
        A.csrrs(R.a0, MHARTID, R.zero),
        A.csrrc(R.a1, MVENDORID, R.zero),
        A.csrrsi(R.a2, MHARTID, 0),
      ],
      (r) => {
        r.cpu.mhartid = 3;
      },
    );
    expect([s32(rig, R.a0), s32(rig, R.a1), s32(rig, R.a2), rig.cpu.mcause]).toEqual([3, 0, 3, 0]);
  });
  it('traps writes to read-only CSRs, even CSRRS with a zero-valued rs1 register', () => {
    const insn = A.csrrs(R.a0, MHARTID, R.a1); // a1 = 0 but rs1 != x0: still a write
    const rig = prog([insn]);
    expect([rig.cpu.mcause, rig.cpu.mtval >>> 0]).toEqual([2, insn >>> 0]);
    const rig2 = prog([A.csrrwi(R.zero, CYCLE, 0)]);
    expect(rig2.cpu.mcause).toBe(2);
  });
  it('traps unimplemented CSRs (satp: no S-mode) with the instruction in mtval', () => {
    const insn = A.csrrs(R.a0, SATP, R.zero);
    const rig = prog([insn]);
    expect([rig.cpu.mcause, rig.cpu.mtval >>> 0, rig.cpu.mepc]).toEqual([2, insn >>> 0, RAM + 12]);
  });
});

describe('machine CSRs', () => {
  it('misa is RV32IMA and ignores writes', () => {
    const rig = prog([...A.li(R.a0, -1), A.csrrw(R.zero, MISA, R.a0), A.csrrs(R.a1, MISA, R.zero)]);
    expect(u32(rig, R.a1)).toBe(MISA_RV32IMA);
    expect(rig.cpu.mcause).toBe(0);
  });
  it('mstatus keeps MIE/MPIE and reads MPP as M', () => {
    const rig = prog([
      ...A.li(R.a0, -1),
      A.csrrw(R.zero, MSTATUS, R.a0),
      A.csrrs(R.a1, MSTATUS, R.zero),
      A.csrrw(R.zero, MSTATUS, R.zero),
      A.csrrs(R.a2, MSTATUS, R.zero),
    ]);
    expect([u32(rig, R.a1), u32(rig, R.a2)]).toEqual([0x1888, 0x1800]);
  });
  it('mie keeps MSIE/MTIE/MEIE; mip ignores writes', () => {
    const rig = prog([
      ...A.li(R.a0, -1),
      A.csrrw(R.zero, MIE, R.a0),
      A.csrrs(R.a1, MIE, R.zero),
      A.csrrw(R.zero, MIE, R.zero),
      A.csrrw(R.zero, MIP, R.a0),
      A.csrrs(R.a2, MIP, R.zero),
    ]);
    expect([u32(rig, R.a1), u32(rig, R.a2), rig.cpu.mcause]).toEqual([0x888, 0, 0]);
  });
  it('mtvec ignores reserved modes and keeps direct and vectored ones', () => {
    const rig = prog([
      ...A.li(R.a0, 0x80001001),
      A.csrrw(R.a1, MTVEC, R.a0),
      A.csrrs(R.a2, MTVEC, R.zero),
      ...A.li(R.a3, 0x80002002),
      A.csrrw(R.zero, MTVEC, R.a3),
      A.csrrs(R.a4, MTVEC, R.zero),
      A.csrrw(R.zero, MTVEC, R.a1),
    ]);
    expect([u32(rig, R.a2), u32(rig, R.a4)]).toEqual([0x80001001, 0x80001001]);
  });
  it('mepc stores any value (QEMU 7.2 does not mask it)', () => {
    const rig = prog([
      ...A.li(R.a0, 0x80000003),
      A.csrrw(R.zero, MEPC, R.a0),
      A.csrrs(R.a1, MEPC, R.zero),
    ]);
    expect(u32(rig, R.a1)).toBe(0x80000003);
  });
  it('PMP and HPM registers exist and read as zero', () => {
    const rig = prog([
      ...A.li(R.a0, -1),
      A.csrrw(R.zero, 0x3a0, R.a0),
      A.csrrs(R.a1, 0x3a0, R.zero),
      A.csrrw(R.zero, 0x3bf, R.a0),
      A.csrrw(R.zero, 0xb03, R.a0),
      A.csrrs(R.a2, 0xc1f, R.zero),
      A.csrrw(R.zero, 0x320, R.a0),
      A.csrrs(R.a3, 0x320, R.zero),
    ]);
    expect([s32(rig, R.a1), s32(rig, R.a2), s32(rig, R.a3), rig.cpu.mcause]).toEqual([0, 0, 0, 0]);
  });
});

describe('counters and time', () => {
  it('mcycle, minstret and their user aliases count executed instructions, inclusive', () => {
    const rig = prog([
      A.csrrs(R.a0, MCYCLE, R.zero),
      A.csrrs(R.a1, INSTRET, R.zero),
      A.csrrs(R.a2, CYCLE, R.zero),
      A.csrrs(R.a3, MCYCLEH, R.zero),
    ]);
    // li (2) + csrrw (1) precede; the first read is the 4th instruction.
    expect([s32(rig, R.a0), s32(rig, R.a1), s32(rig, R.a2), s32(rig, R.a3)]).toEqual([4, 5, 6, 0]);
  });
  it('writes move the counters, with carry into the high half', () => {
    const rig = prog([
      ...A.li(R.a0, -3),
      A.csrrw(R.zero, MINSTRET, R.a0),
      A.csrrs(R.a1, MINSTRET, R.zero),
      A.addi(R.zero, R.zero, 0),
      A.csrrs(R.a2, MINSTRET, R.zero),
      A.csrrs(R.a3, 0xb82, R.zero),
    ]);
    expect([u32(rig, R.a1), u32(rig, R.a2), u32(rig, R.a3)]).toEqual([0xfffffffe, 0, 1]);
  });
  it('time/timeh read the environment’s mtime', () => {
    const rig = prog([A.csrrs(R.a0, TIME, R.zero), A.csrrs(R.a1, TIMEH, R.zero)], (r) => {
      r.time.now = 0x1_2345_6789;
    });
    expect([u32(rig, R.a0), u32(rig, R.a1)]).toEqual([0x23456789, 1]);
  });
});
