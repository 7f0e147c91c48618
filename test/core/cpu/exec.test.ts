// cpuExec's contract: exact budgets, exits ('budget' | 'halt' | 'kick'), slicing independence
// (any split of the same run gives the same state), and save/load round trips of CpuState.
// Method: a loop-heavy hand-encoded program run whole and in seeded random slices.
import { describe, expect, it } from 'vitest';
import { addressSpaceAddRegion } from '../../../core/memory/index.ts';
import {
  cpuCreate,
  cpuExec,
  cpuExit,
  cpuLoadState,
  cpuReset,
  cpuSaveState,
} from '../../../core/cpu/index.ts';
import { prngCreate, prngInt } from '../../../core/util/index.ts';
import * as A from './asm.ts';
import { RAM, makeRig, s32 } from './support.ts';

const { R } = A;
const SEED = Number(process.env.SEED ?? 1);

/** Sum 0..N-1 into a1 with stores and loads through memory, then halt. */
const N = 500;
const PROGRAM = [
  ...A.li(R.a0, RAM + 0x2000),
  ...A.li(R.t0, N), // 0-3
  A.sw(R.t1, R.a0, 0),
  A.lw(R.t2, R.a0, 0),
  A.add(R.a1, R.a1, R.t2),
  A.addi(R.t1, R.t1, 1), // 4-7
  A.mul(R.t3, R.t1, R.t1),
  A.xor(R.a2, R.a2, R.t3), // 8-9
  A.bne(R.t1, R.t0, -24),
  A.wfi(), // 10-11
];
const TOTAL = 4 + N * 7 + 1;

describe('cpuExec budgets and exits', () => {
  it('executes exactly the budget and resumes where it stopped', () => {
    const rig = makeRig(PROGRAM);
    expect(cpuExec(rig.cpu, rig.env, 7)).toBe('budget');
    expect(rig.cpu.icount).toBe(7);
    expect(rig.cpu.pc).toBe(RAM + 4 * 7);
    expect(cpuExec(rig.cpu, rig.env, 0)).toBe('budget');
    expect(rig.cpu.icount).toBe(7);
    expect(cpuExec(rig.cpu, rig.env, 1_000_000)).toBe('halt');
    expect(rig.cpu.icount).toBe(TOTAL);
    expect(s32(rig, R.a1)).toBe((N * (N - 1)) / 2);
  });
  it(`gives the same state for any slicing (SEED=${SEED})`, () => {
    const whole = makeRig(PROGRAM);
    cpuExec(whole.cpu, whole.env, 1_000_000);
    const rng = prngCreate(SEED);
    const sliced = makeRig(PROGRAM);
    let exits = 0;
    for (; exits < 100_000; exits++) {
      if (cpuExec(sliced.cpu, sliced.env, prngInt(rng, 40)) === 'halt') break;
    }
    expect(cpuSaveState(sliced.cpu), `SEED=${SEED}`).toEqual(cpuSaveState(whole.cpu));
  });
  it("returns 'kick' at once when exitRequest is already set, and clears it", () => {
    const rig = makeRig(PROGRAM);
    cpuExit(rig.cpu);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('kick');
    expect([rig.cpu.exitRequest, rig.cpu.icount]).toEqual([false, 0]);
  });
  it('rejects negative or fractional budgets (programmer error)', () => {
    const rig = makeRig(PROGRAM);
    expect(() => cpuExec(rig.cpu, rig.env, -1)).toThrow(/bad budget/);
    expect(() => cpuExec(rig.cpu, rig.env, 1.5)).toThrow(/bad budget/);
  });
});

describe('CpuState save/load', () => {
  it('round-trips through JSON and continues identically', () => {
    const a = makeRig(PROGRAM);
    cpuExec(a.cpu, a.env, 1234);
    a.cpu.mscratch = 0xdeadbeef;
    a.cpu.mcycleOffsetHi = 5;
    const saved = JSON.parse(JSON.stringify(cpuSaveState(a.cpu)));
    // A second machine with the same memory image and the loaded CPU.
    const b = makeRig(PROGRAM);
    cpuExec(b.cpu, b.env, 1234); // same RAM contents as a
    const fresh = cpuCreate(0, 0);
    cpuLoadState(fresh, saved);
    expect(cpuSaveState(fresh)).toEqual(saved);
    cpuLoadState(b.cpu, saved);
    cpuExec(a.cpu, a.env, 1_000_000);
    cpuExec(b.cpu, b.env, 1_000_000);
    expect(cpuSaveState(b.cpu)).toEqual(cpuSaveState(a.cpu));
  });
  it('rejects an unknown version or bad fields without changing the hart', () => {
    const cpu = cpuCreate(0, RAM);
    const before = cpuSaveState(cpu);
    const bad = { ...before, version: 2 } as unknown as ReturnType<typeof cpuSaveState>;
    expect(() => cpuLoadState(cpu, bad)).toThrow(/riscv-cpu version 2.*version 1/);
    expect(() => cpuLoadState(cpu, { ...before, pc: -1 })).toThrow(/pc/);
    expect(() => cpuLoadState(cpu, { ...before, x: [1, 2] })).toThrow(/x must be 32/);
    expect(cpuSaveState(cpu)).toEqual(before);
  });
  it('reset keeps registers (as QEMU 7.2) but restarts at the reset vector with MIE clear', () => {
    const rig = makeRig(PROGRAM);
    cpuExec(rig.cpu, rig.env, 50);
    rig.cpu.mstatus = 0x88;
    rig.cpu.mcause = 7;
    rig.cpu.resvAddr = RAM;
    const a1 = s32(rig, R.a1);
    cpuReset(rig.cpu);
    expect([rig.cpu.pc, rig.cpu.mstatus, rig.cpu.mcause, rig.cpu.resvAddr, s32(rig, R.a1)]).toEqual(
      [RAM, 0x80, 0, -1, a1],
    );
  });
});

describe('icount during a slice', () => {
  it('is exact (including the accessing instruction) when a device callback runs', () => {
    const seen: number[] = [];
    const program = [
      ...A.li(R.a0, 0x1000_0000), ...A.li(R.t0, 20),
      A.lw(R.a1, R.a0, 0), A.addi(R.t0, R.t0, -1), A.bne(R.t0, R.zero, -8), A.wfi(),
    ];
    for (const jit of [true, false]) {
      const rig = makeRig(program);
      rig.env.jit = jit;
      seen.length = 0;
      addressSpaceAddRegion(rig.as, {
        name: 'probe',
        base: 0x1000_0000,
        size: 4,
        read: () => {
          seen.push(rig.cpu.icount);
          return 0;
        },
        write: () => undefined,
      });
      expect(cpuExec(rig.cpu, rig.env, 1000)).toBe('halt');
      expect(seen).toEqual(Array.from({ length: 20 }, (_, k) => 5 + 3 * k));
    }
  });
});
