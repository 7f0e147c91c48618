// RV32I register/immediate arithmetic and the M extension, with the edge cases the spec pins
// down (x0 writes ignored, shift amounts, sign handling, division by zero and overflow).
// Method: hand-encoded programs ending in WFI, run through cpuExec, registers checked after.
import { describe, expect, it } from 'vitest';
import * as A from './asm.ts';
import { RAM, runProgram, s32, u32 } from './support.ts';

const { R } = A;
const INT_MIN = -0x8000_0000;

/** Compute `op(rd=a0, a1, a2)` with a1, a2 loaded by li; returns a0 as int32. */
function rr(op: (rd: number, a: number, b: number) => number, a: number, b: number): number {
  const rig = runProgram([...A.li(R.a1, a), ...A.li(R.a2, b), op(R.a0, R.a1, R.a2), A.wfi()]);
  return s32(rig, R.a0);
}
function ri(op: (rd: number, a: number, imm: number) => number, a: number, imm: number): number {
  const rig = runProgram([...A.li(R.a1, a), op(R.a0, R.a1, imm), A.wfi()]);
  return s32(rig, R.a0);
}

describe('RV32I ALU', () => {
  it('adds and subtracts with 32-bit wrap-around', () => {
    expect(rr(A.add, 0x7fff_ffff, 1)).toBe(INT_MIN);
    expect(rr(A.sub, INT_MIN, 1)).toBe(0x7fff_ffff);
    expect(ri(A.addi, 5, -6)).toBe(-1);
    expect(ri(A.addi, 0, 2047)).toBe(2047);
    expect(ri(A.addi, 0, -2048)).toBe(-2048);
  });
  it('compares signed and unsigned', () => {
    expect(rr(A.slt, -1, 0)).toBe(1);
    expect(rr(A.sltu, -1, 0)).toBe(0);
    expect(ri(A.slti, -5, -4)).toBe(1);
    expect(ri(A.sltiu, 0, -1)).toBe(1); // the immediate is sign-extended, then compared unsigned
    expect(ri(A.sltiu, 1, 1)).toBe(0);
  });
  it('does logic ops with sign-extended immediates', () => {
    expect(ri(A.xori, 0x0f0f, -1)).toBe(~0x0f0f);
    expect(ri(A.ori, 0x100, 0x0ff)).toBe(0x1ff);
    expect(ri(A.andi, -1, 0x7ff)).toBe(0x7ff);
    expect(rr(A.and, 0xff00ff00, 0x0ff00ff0)).toBe(0x0f000f00);
    expect(rr(A.or, 0xf0, 0x0f)).toBe(0xff);
    expect(rr(A.xor, -1, 0x1234)).toBe(~0x1234);
  });
  it('shifts by the low 5 bits of rs2', () => {
    expect(rr(A.sll, 1, 33)).toBe(2);
    expect(rr(A.srl, INT_MIN, 63)).toBe(1);
    expect(rr(A.sra, INT_MIN, 31 + 32)).toBe(-1);
    expect(ri(A.slli, 1, 31)).toBe(INT_MIN);
    expect(ri(A.srli, -1, 28)).toBe(0xf);
    expect(ri(A.srai, -16, 2)).toBe(-4);
  });
  it('loads upper immediates and pc-relative addresses', () => {
    const rig = runProgram([A.lui(R.a0, 0xfffff), A.auipc(R.a1, 1), A.wfi()]);
    expect(u32(rig, R.a0)).toBe(0xfffff000);
    expect(u32(rig, R.a1)).toBe(RAM + 4 + 0x1000);
  });
  it('ignores writes to x0 from every kind of instruction', () => {
    const rig = runProgram(
      [
        A.addi(R.zero, R.zero, 5),
        A.lui(R.zero, 1),
        A.auipc(R.zero, 1),
        A.lw(R.zero, R.zero, 0),
        ...A.li(R.a0, RAM),
        A.lw(R.zero, R.a0, 0),
        A.jal(R.zero, 4),
        A.mul(R.zero, R.a0, R.a0),
        A.csrrs(R.zero, 0xf14, R.zero),
        A.add(R.a1, R.zero, R.zero),
        A.wfi(),
      ],
      (r) => {
        r.cpu.mtvec = RAM + 4 * 4;
      },
    ); // lw x0, 0(x0) faults: resume after it
    expect(s32(rig, R.zero)).toBe(0);
    expect(s32(rig, R.a1)).toBe(0);
  });
});

describe('M extension', () => {
  it('multiplies (low and high halves, all signednesses)', () => {
    expect(rr(A.mul, 0x12345678, 0x9abcdef0)).toBe(Math.imul(0x12345678, 0x9abcdef0));
    expect(rr(A.mulh, -1, -1)).toBe(0);
    expect(rr(A.mulh, INT_MIN, INT_MIN)).toBe(0x4000_0000);
    expect(rr(A.mulh, INT_MIN, 0x7fff_ffff)).toBe(-0x4000_0000);
    expect(rr(A.mulhu, -1, -1)).toBe(-2); // 0xfffffffe
    expect(rr(A.mulhu, 0x8000_0000, 2)).toBe(1);
    expect(rr(A.mulhsu, -1, -1)).toBe(-1); // -1 * 0xffffffff = -0xffffffff: high word -1
    expect(rr(A.mulhsu, 2, -1)).toBe(1);
    expect(rr(A.mulhsu, INT_MIN, -1)).toBe(INT_MIN | 0x0); // -2^31 * (2^32-1) >> 32 = -2^31 + 0
  });
  it('matches BigInt for the high products on a sample', () => {
    const vals = [
      0,
      1,
      -1,
      2,
      -2,
      0x7fff_ffff,
      INT_MIN,
      0x1234_5678,
      -0x1234_5678,
      0xdead_beef | 0,
    ];
    for (const a of vals) {
      for (const b of vals) {
        const sa = BigInt(a);
        const sb = BigInt(b);
        const ua = BigInt(a >>> 0);
        const ub = BigInt(b >>> 0);
        const hi = (v: bigint): number => Number(BigInt.asIntN(32, v >> 32n));
        expect(rr(A.mulh, a, b)).toBe(hi(sa * sb));
        expect(rr(A.mulhu, a, b)).toBe(hi(ua * ub));
        expect(rr(A.mulhsu, a, b)).toBe(hi(sa * ub));
      }
    }
  });
  it('divides with the spec results for zero divisors and overflow', () => {
    expect(rr(A.div, 7, -2)).toBe(-3); // rounds toward zero
    expect(rr(A.div, -7, 2)).toBe(-3);
    expect(rr(A.div, 5, 0)).toBe(-1);
    expect(rr(A.div, INT_MIN, -1)).toBe(INT_MIN);
    expect(rr(A.divu, -1, 2)).toBe(0x7fff_ffff);
    expect(rr(A.divu, 5, 0)).toBe(-1);
    expect(rr(A.rem, -7, 2)).toBe(-1); // sign of the dividend
    expect(rr(A.rem, 7, -2)).toBe(1);
    expect(rr(A.rem, 5, 0)).toBe(5);
    expect(rr(A.rem, INT_MIN, -1)).toBe(0);
    expect(rr(A.remu, -1, 10)).toBe(5); // 4294967295 % 10
    expect(rr(A.remu, -7, 0)).toBe(-7);
  });
});
