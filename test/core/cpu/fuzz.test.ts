// Differential fuzzing of cpuExec against the simple reference interpreter (reference.ts):
// random RV32IM programs (ALU, M, loads/stores of every width and alignment into a data window
// that straddles a 64 KiB chunk boundary; branches, JALs and JALRs anywhere in a program that
// itself straddles a chunk boundary) run for a fixed number of instructions in random slices.
// Registers, pc and data bytes must match, with and without compiled blocks (translate.ts).
// SEED comes from the environment (default 1).
import { describe, expect, it } from 'vitest';
import { addressSpaceRead, addressSpaceWrite } from '../../../core/memory/index.ts';
import { cpuExec } from '../../../core/cpu/index.ts';
import { prngCreate, prngInt, prngNextU32, type PrngState } from '../../../core/util/index.ts';
import * as A from './asm.ts';
import { refStep, type RefState } from './reference.ts';
import { RAM, makeRig, wordsToBytes } from './support.ts';

const SEED = Number(process.env.SEED ?? 1);
const PROGRAMS = 40;
const LENGTH = 200; // instructions per program
const STEPS = 3000; // instructions executed per program
const CODE = RAM + 0x1_0000 - 4 * (LENGTH / 2); // straddles the first chunk boundary
const DATA = RAM + 0x2_0000 - 512; // 1 KiB window straddling the second
const BASE = 8; // s0 holds DATA and is never written
const LINK = 16; // a6 holds CODE (for JALR) and is never written

const pick = <T>(r: PrngState, xs: readonly T[]): T => xs[prngInt(r, xs.length)]!;
const reg = (r: PrngState): number => pick(r, [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]);
const src = (r: PrngState): number => prngInt(r, 16);

function randomInsn(r: PrngState, slot: number): number {
  const target = (): number => 4 * (prngInt(r, LENGTH) - slot);
  switch (prngInt(r, 10)) {
    case 0:
    case 1:
      return pick(r, [A.add, A.sub, A.sll, A.slt, A.sltu, A.xor, A.srl, A.sra, A.or, A.and])(
        reg(r),
        src(r),
        src(r),
      );
    case 2:
      return pick(r, [A.mul, A.mulh, A.mulhsu, A.mulhu, A.div, A.divu, A.rem, A.remu])(
        reg(r),
        src(r),
        src(r),
      );
    case 3:
    case 4:
      return pick(r, [A.addi, A.slti, A.sltiu, A.xori, A.ori, A.andi])(
        reg(r),
        src(r),
        prngInt(r, 4096) - 2048,
      );
    case 5:
      return pick(r, [A.slli, A.srli, A.srai])(reg(r), src(r), prngInt(r, 32));
    case 6:
      return prngInt(r, 2)
        ? A.lui(reg(r), prngNextU32(r) >>> 12)
        : A.auipc(reg(r), prngNextU32(r) >>> 12);
    case 7:
      return pick(r, [A.lb, A.lh, A.lw, A.lbu, A.lhu])(reg(r), BASE, prngInt(r, 1021));
    case 8:
      return pick(r, [A.sb, A.sh, A.sw])(src(r), BASE, prngInt(r, 1021));
    default: {
      const t = target();
      if (prngInt(r, 8) === 0) return A.jalr(reg(r), LINK, 4 * prngInt(r, LENGTH));
      if (prngInt(r, 4) === 0) return A.jal(reg(r), t);
      return pick(r, [A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu])(src(r), src(r), t);
    }
  }
}

describe(`cpuExec vs reference interpreter (SEED=${SEED})`, () => {
  it.each([true, false])(`agrees on ${PROGRAMS} random programs (compiled blocks: %s)`, (jit) => {
    const r = prngCreate(SEED);
    for (let p = 0; p < PROGRAMS; p++) {
      const prog = Array.from({ length: LENGTH }, (_, i) => randomInsn(r, i));
      prog.push(A.jal(0, -4 * LENGTH)); // falling off the end loops back to the start
      const rig = makeRig([], { ramSize: 1 << 20 });
      rig.env.jit = jit;
      addressSpaceWrite(rig.as, CODE, wordsToBytes(prog));
      const data = Uint8Array.from({ length: 1024 }, () => prngInt(r, 256));
      addressSpaceWrite(rig.as, DATA, data);
      const x = Int32Array.from({ length: 32 }, () => prngNextU32(r) | 0);
      x[0] = 0;
      x[BASE] = DATA | 0;
      x[LINK] = CODE | 0;
      rig.cpu.x.set(x);
      rig.cpu.pc = CODE;
      const ref: RefState = { pc: CODE | 0, x: x.slice(), mem: new Uint8Array(1 << 20), base: RAM };
      ref.mem.set(wordsToBytes(prog), CODE - RAM);
      ref.mem.set(data, DATA - RAM);
      for (let i = 0; i < STEPS; i++) {
        if (!refStep(ref))
          throw new Error(
            `SEED=${SEED} program ${p}: reference cannot run pc 0x${(ref.pc >>> 0).toString(16)}`,
          );
      }
      for (let done = 0; done < STEPS;) {
        const slice = Math.min(STEPS - done, 1 + prngInt(r, 300));
        expect(cpuExec(rig.cpu, rig.env, slice)).toBe('budget');
        done += slice;
      }
      const ctx = `SEED=${SEED} program ${p}`;
      expect(rig.cpu.mcause, ctx).toBe(0);
      expect(rig.cpu.pc, ctx).toBe(ref.pc >>> 0);
      expect(Array.from(rig.cpu.x), ctx).toEqual(Array.from(ref.x));
      const mine = new Uint8Array(1024);
      addressSpaceRead(rig.as, DATA, mine);
      expect(Array.from(mine), ctx).toEqual(
        Array.from(ref.mem.subarray(DATA - RAM, DATA - RAM + 1024)),
      );
    }
  });
});
