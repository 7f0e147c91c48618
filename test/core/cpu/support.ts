// Test fixtures for CPU tests: harts plus an address space with a program loaded at the start
// of RAM and a settable mtime; runProgram runs a program to its final WFI.

import {
  addressSpaceCreate,
  addressSpaceWrite,
  type AddressSpace,
} from '../../../core/memory/index.ts';
import {
  cpuCreate,
  cpuEnvCreate,
  cpuExec,
  type CpuEnv,
  type CpuState,
} from '../../../core/cpu/index.ts';

export const RAM = 0x8000_0000;

export interface Rig {
  as: AddressSpace;
  cpu: CpuState;
  cpus: CpuState[];
  env: CpuEnv;
  /** The value `time` reads; tests set it. */
  time: { now: number };
}

/** Words to bytes, little-endian. */
export function wordsToBytes(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return b;
}

/** A rig with `program` at 0x80000000 and the hart(s) starting there. */
export function makeRig(program: number[], opts: { ramSize?: number; harts?: number } = {}): Rig {
  const as = addressSpaceCreate(opts.ramSize ?? 1 << 20);
  if (program.length > 0) addressSpaceWrite(as, RAM, wordsToBytes(program));
  const cpus = Array.from({ length: opts.harts ?? 1 }, (_, i) => cpuCreate(i, RAM));
  const time = { now: 0 };
  const env = cpuEnvCreate(as, () => time.now, cpus);
  return { as, cpu: cpus[0]!, cpus, env, time };
}

/**
 * Run `program` (which should end in WFI with no interrupt enabled) on a fresh rig until the hart
 * halts; throws if it does not within `maxInsns`. `setup` runs before execution.
 */
export function runProgram(program: number[], setup?: (rig: Rig) => void, maxInsns = 100_000): Rig {
  const rig = makeRig(program);
  setup?.(rig);
  const exit = cpuExec(rig.cpu, rig.env, maxInsns);
  if (exit !== 'halt') {
    throw new Error(
      `program did not halt: exit ${exit}, pc 0x${rig.cpu.pc.toString(16)}, ` +
        `mcause ${rig.cpu.mcause}`,
    );
  }
  return rig;
}

/** Register value as uint32. */
export const u32 = (rig: Rig, r: number): number => rig.cpu.x[r]! >>> 0;
/** Register value as int32. */
export const s32 = (rig: Rig, r: number): number => rig.cpu.x[r]!;
