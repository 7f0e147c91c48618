// Branches and jumps: conditions, link registers, and the instruction-address-misaligned trap
// for targets that are not 4-byte aligned (no C extension), which QEMU 7.2 raises at the jump
// with mepc = the jump, mtval = the target, and rd unwritten.
// Method: hand-encoded programs run to WFI; trap CSRs inspected.
import { describe, expect, it } from 'vitest';
import * as A from './asm.ts';
import { RAM, runProgram, s32, u32 } from './support.ts';

const { R } = A;

/** Branch over one `addi a0, a0, 1` when taken: a0 = 0 if taken, 1 if not. */
function branch(op: (a: number, b: number, off: number) => number, a: number, b: number): number {
  const rig = runProgram([
    ...A.li(R.a1, a),
    ...A.li(R.a2, b),
    op(R.a1, R.a2, 8),
    A.addi(R.a0, R.a0, 1),
    A.wfi(),
  ]);
  return s32(rig, R.a0) === 0 ? 1 : 0;
}

describe('branches', () => {
  it('evaluate all six conditions, signed and unsigned', () => {
    expect(branch(A.beq, 3, 3)).toBe(1);
    expect(branch(A.beq, 3, 4)).toBe(0);
    expect(branch(A.bne, 3, 4)).toBe(1);
    expect(branch(A.blt, -1, 0)).toBe(1);
    expect(branch(A.blt, 0, -1)).toBe(0);
    expect(branch(A.bge, 0, 0)).toBe(1);
    expect(branch(A.bge, -2, -1)).toBe(0);
    expect(branch(A.bltu, 0, -1)).toBe(1);
    expect(branch(A.bltu, -1, 0)).toBe(0);
    expect(branch(A.bgeu, -1, 0)).toBe(1);
  });
  it('run a backward loop', () => {
    const rig = runProgram([
      ...A.li(R.t0, 10),
      A.addi(R.a0, R.a0, 3),
      A.addi(R.t0, R.t0, -1),
      A.bne(R.t0, R.zero, -8),
      A.wfi(),
    ]);
    expect(s32(rig, R.a0)).toBe(30);
    expect(rig.cpu.icount).toBe(2 + 30 + 1);
  });
  it('trap on a taken branch to a misaligned target, not on a not-taken one', () => {
    const notTaken = runProgram([A.beq(R.zero, R.t6, 6), A.wfi()], (r) => {
      r.cpu.x[R.t6] = 1;
    });
    expect(notTaken.cpu.mcause).toBe(0);
    const rig = runProgram([A.beq(R.zero, R.zero, 6), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 4;
    });
    expect(rig.cpu.mcause).toBe(0);
    expect(rig.cpu.mepc).toBe(RAM);
    expect(rig.cpu.mtval).toBe(RAM + 6);
  });
});

describe('jumps', () => {
  it('JAL links pc+4 and jumps; JALR clears bit 0 of the target', () => {
    const rig = runProgram([
      A.jal(R.ra, 12),
      A.wfi(),
      A.wfi(),
      ...A.li(R.t0, RAM + 4 * 6 + 1), // target with bit 0 set: jalr ignores it
      A.jalr(R.t1, R.t0, 0),
      A.addi(R.a0, R.a0, 1),
      A.wfi(),
    ]);
    expect(u32(rig, R.ra)).toBe(RAM + 4);
    expect(u32(rig, R.t1)).toBe(RAM + 24);
    expect(s32(rig, R.a0)).toBe(1);
    expect(rig.cpu.pc).toBe(RAM + 4 * 8);
  });
  it('JALR with rd = rs1 uses the old rs1', () => {
    const rig = runProgram([...A.li(R.t0, RAM + 16), A.jalr(R.t0, R.t0, 0), A.wfi(), A.wfi()]);
    expect(u32(rig, R.t0)).toBe(RAM + 12);
    expect(rig.cpu.pc).toBe(RAM + 20);
  });
  it('JAL and JALR to a misaligned target trap without writing rd', () => {
    const j = runProgram([A.jal(R.ra, 6), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 4;
    });
    expect([j.cpu.mcause, j.cpu.mepc, j.cpu.mtval, s32(j, R.ra)]).toEqual([0, RAM, RAM + 6, 0]);
    const r2 = runProgram(
      [...A.li(R.t0, RAM + 0x102), A.jalr(R.ra, R.t0, 0), A.wfi(), A.wfi()],
      (r) => {
        r.cpu.mtvec = RAM + 12;
      },
    );
    expect([r2.cpu.mcause, r2.cpu.mepc, r2.cpu.mtval, s32(r2, R.ra)]).toEqual([
      0,
      RAM + 8,
      RAM + 0x102,
      0,
    ]);
  });
  it('jumps across 64 KiB decode chunks and back', () => {
    const far = 0x1_0000 + 0x20; // in the next chunk
    const prog = new Array<number>(far / 4 + 4).fill(A.wfi());
    prog[0] = A.jal(R.ra, far);
    prog[1] = A.addi(R.a0, R.a0, 7);
    prog[2] = A.wfi();
    prog[far / 4] = A.jalr(R.zero, R.ra, 0);
    const rig = runProgram(prog);
    expect(s32(rig, R.a0)).toBe(7);
    expect(rig.cpu.pc).toBe(RAM + 12);
  });
});
