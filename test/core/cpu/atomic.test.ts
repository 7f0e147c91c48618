// A extension: LR/SC with a one-word reservation per hart (SC clears it; any store to the word,
// from any hart, breaks it), the AMOs' read-modify-write results, and alignment and access
// faults (LR: cause 4/5; SC/AMO: cause 6/7; an SC to an unreserved address fails without trapping).
// Method: hand-encoded programs on one or two harts sharing an address space.
import { describe, expect, it } from 'vitest';
import {
  addressSpaceLd,
  addressSpaceSt,
  addressSpaceWrite,
  ramWatchReservation,
} from '../../../core/memory/index.ts';
import { cpuExec } from '../../../core/cpu/index.ts';
import * as A from './asm.ts';
import { RAM, makeRig, runProgram, s32, u32, wordsToBytes } from './support.ts';

const { R } = A;
const DATA = RAM + 0x4000;

describe('LR/SC', () => {
  it('succeeds when nothing intervenes and clears the reservation', () => {
    const rig = runProgram(
      [
        ...A.li(R.a0, DATA),
        ...A.li(R.t1, 42),
        A.lrW(R.t0, R.a0),
        A.scW(R.a1, R.a0, R.t1),
        A.scW(R.a2, R.a0, R.t1),
        A.wfi(),
      ],
      (r) => {
        addressSpaceSt(r.as, DATA, 4, 7);
      },
    );
    expect([s32(rig, R.t0), s32(rig, R.a1), s32(rig, R.a2)]).toEqual([7, 0, 1]);
    expect(addressSpaceLd(rig.as, DATA, 4)).toBe(42);
    expect(rig.cpu.resvAddr).toBe(-1);
  });
  it('fails after an intervening store to the reserved word, even of the same value', () => {
    const rig = runProgram([
      ...A.li(R.a0, DATA),
      A.lrW(R.t0, R.a0),
      A.sw(R.t0, R.a0, 0),
      A.scW(R.a1, R.a0, R.a0),
      A.wfi(),
    ]);
    expect(s32(rig, R.a1)).toBe(1);
    expect(addressSpaceLd(rig.as, DATA, 4)).toBe(0);
  });
  it('survives stores to other words of the same page', () => {
    const rig = runProgram([
      ...A.li(R.a0, DATA),
      A.lrW(R.t0, R.a0),
      A.sw(R.t0, R.a0, 4),
      A.sb(R.t0, R.a0, -1),
      A.scW(R.a1, R.a0, R.a0),
      A.wfi(),
    ]);
    expect(s32(rig, R.a1)).toBe(0);
  });
  it('fails for a different address without touching memory or trapping, even misaligned', () => {
    const rig = runProgram([
      ...A.li(R.a0, DATA),
      A.lrW(R.t0, R.a0),
      A.addi(R.a2, R.a0, 2),
      A.scW(R.a1, R.a2, R.a0),
      A.scW(R.a3, R.a0, R.a0),
      A.wfi(),
    ]);
    // The first SC failed and cleared the reservation, so the second fails too.
    expect([s32(rig, R.a1), s32(rig, R.a3), rig.cpu.mcause]).toEqual([1, 1, 0]);
  });
  it('is broken by another hart’s store and by a device/DMA write', () => {
    const prog = [
      ...A.li(R.a0, DATA),
      A.lrW(R.t0, R.a0),
      A.wfi(),
      A.scW(R.a1, R.a0, R.a0),
      A.wfi(),
    ];
    const rig = makeRig(prog, { harts: 2 });
    const [h0, h1] = rig.cpus as [typeof rig.cpu, typeof rig.cpu];
    expect(cpuExec(h0, rig.env, 100)).toBe('halt'); // holds the reservation, parked on WFI
    expect(h0.resvAddr).toBe(DATA);
    // Hart 1 runs a store to the reserved word from another program at RAM+0x100.
    addressSpaceWrite(
      rig.as,
      RAM + 0x100,
      wordsToBytes([...A.li(R.a0, DATA), A.sw(R.zero, R.a0, 0), A.wfi()]),
    );
    h1.pc = RAM + 0x100;
    expect(cpuExec(h1, rig.env, 100)).toBe('halt');
    expect(h0.resvAddr).toBe(-1);
    h0.halted = false;
    expect(cpuExec(h0, rig.env, 100)).toBe('halt');
    expect(s32(rig, R.a1) /* hart 0 */).toBe(1);
    // A device write breaks a fresh reservation too (as set up by LR: reservation + page watch).
    h0.resvAddr = DATA;
    ramWatchReservation(rig.as, DATA);
    addressSpaceWrite(rig.as, DATA, Uint8Array.from([1]));
    expect(h0.resvAddr).toBe(-1);
  });
  it('LR faults: misaligned (cause 4) and unmapped (cause 5)', () => {
    const a = runProgram([...A.li(R.a0, DATA + 2), A.lrW(R.t0, R.a0), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 12;
    });
    expect([a.cpu.mcause, a.cpu.mtval]).toEqual([4, DATA + 2]);
    const b = runProgram([...A.li(R.a0, 0x100), A.lrW(R.t0, R.a0), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 12;
    });
    expect([b.cpu.mcause, b.cpu.mtval]).toEqual([5, 0x100]);
  });
});

describe('AMOs', () => {
  const cases: Array<
    [string, (rd: number, a: number, b: number) => number, number, number, number]
  > = [
    ['swap', A.amoswapW, 5, 9, 9],
    ['add', A.amoaddW, 0x7fffffff, 1, -0x80000000],
    ['xor', A.amoxorW, 0b1100, 0b1010, 0b0110],
    ['and', A.amoandW, 0b1100, 0b1010, 0b1000],
    ['or', A.amoorW, 0b1100, 0b1010, 0b1110],
    ['min', A.amominW, -5, 3, -5],
    ['max', A.amomaxW, -5, 3, 3],
    ['minu', A.amominuW, -5, 3, 3],
    ['maxu', A.amomaxuW, -5, 3, -5],
  ];
  for (const [name, op, mem, src, result] of cases) {
    it(`amo${name}.w returns the old value and stores the result`, () => {
      const rig = runProgram(
        [...A.li(R.a0, DATA), ...A.li(R.a1, src), op(R.a2, R.a0, R.a1), A.wfi()],
        (r) => {
          addressSpaceSt(r.as, DATA, 4, mem);
        },
      );
      expect(s32(rig, R.a2)).toBe(mem | 0);
      expect(addressSpaceLd(rig.as, DATA, 4) | 0).toBe(result | 0);
    });
  }
  it('rd = rs2 still stores the computed value', () => {
    const rig = runProgram(
      [...A.li(R.a0, DATA), ...A.li(R.a1, 10), A.amoaddW(R.a1, R.a0, R.a1), A.wfi()],
      (r) => {
        addressSpaceSt(r.as, DATA, 4, 5);
      },
    );
    expect([s32(rig, R.a1), addressSpaceLd(rig.as, DATA, 4)]).toEqual([5, 15]);
  });
  it('fault: misaligned (cause 6) and unmapped (cause 7)', () => {
    const a = runProgram(
      [...A.li(R.a0, DATA + 1), A.amoaddW(R.t0, R.a0, R.a0), A.wfi(), A.wfi()],
      (r) => {
        r.cpu.mtvec = RAM + 12;
      },
    );
    expect([a.cpu.mcause, a.cpu.mtval]).toEqual([6, DATA + 1]);
    const b = runProgram(
      [...A.li(R.a0, 0x100), A.amoswapW(R.t0, R.a0, R.a0), A.wfi(), A.wfi()],
      (r) => {
        r.cpu.mtvec = RAM + 12;
      },
    );
    expect([b.cpu.mcause, b.cpu.mtval, u32(b, R.t0)]).toEqual([7, 0x100, 0]);
  });
});
