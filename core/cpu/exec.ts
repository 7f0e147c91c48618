// cpuExec: the hart's step function. An interpreter over a per-64 KiB-chunk decode cache that
// lives in the address space (ram.decode; stores invalidate the slots they overwrite), with
// aligned RAM loads and stores inline and everything else out of line (op-helper.ts). Plays the
// role of QEMU's accel/tcg/cpu-exec.c cpu_exec plus the riscv translator. At block entries
// (after jumps and branches) hot code runs as blocks compiled by translate.ts, which behave
// exactly like the interpreter. No allocation in the loop beyond the derived caches.
//
// Block boundaries, where exitRequest and pending interrupts are checked: traps, CSR
// instructions, MRET, FENCE/FENCE.I, WFI, AMOs, jumps or branches that leave the 64 KiB decode
// chunk, and every access that leaves the RAM fast path (MMIO, ROM, misaligned), since a device
// may raise an interrupt or set exitRequest during it. Branches inside a chunk need no check:
// no host code runs between them, so nothing can have changed exitRequest or mip.

import { assert } from '../util/index.ts';
import {
  DECODE_CHUNK_LENGTH, MEMTX_OK, RAM_CHUNK_BITS, TARGET_PAGE_BITS, WATCH_CODE, addressSpaceFetch,
  ramWatchHit, ramWatchReservation,
} from '../memory/index.ts';
import { MSTATUS_MIE, RISCV_EXCP_INST_ACCESS_FAULT, RISCV_EXCP_INST_ADDR_MIS } from './cpu-bits.ts';
import type { CpuEnv, CpuState } from './cpu.ts';
import { raiseException, riscvCpuExecInterrupt } from './cpu-helper.ts';
import { OP, decodeInsn } from './decode.ts';
import { helperLoadSlow, helperStoreSlow, helperSystem } from './op-helper.ts';
import { mulh, mulhsu, mulhu } from './mul.ts';
import { blockLookup } from './translate.ts';

/**
 * Why cpuExec returned. 'budget': it executed exactly budgetInsns instructions. 'halt': WFI with
 * no enabled interrupt pending (cpu.halted is set). 'kick': cpu.exitRequest was seen (and
 * cleared, as QEMU's cpu_handle_interrupt clears exit_request).
 */
export type CpuExit = 'budget' | 'halt' | 'kick';

/**
 * decode.ts's OP numbers again, as a const enum: esbuild (tsx, vitest) inlines its members as
 * literals, so V8 compiles the interpreter's switch to a jump table. Imported constants would
 * be compared one by one (and are getter calls under vitest's module runner).
 */
const enum Op {
  UNDECODED = 0, ILLEGAL = 1, NOP = 2, LUI = 3, AUIPC = 4, JAL = 5, JALR = 6, BEQ = 7, BNE = 8,
  BLT = 9, BGE = 10, BLTU = 11, BGEU = 12, LB = 13, LH = 14, LW = 15, LBU = 16, LHU = 17, SB = 18,
  SH = 19, SW = 20, ADDI = 21, SLTI = 22, SLTIU = 23, XORI = 24, ORI = 25, ANDI = 26, SLLI = 27,
  SRLI = 28, SRAI = 29, ADD = 30, SUB = 31, SLL = 32, SLT = 33, SLTU = 34, XOR = 35, SRL = 36,
  SRA = 37, OR = 38, AND = 39, MUL = 40, MULH = 41, MULHSU = 42, MULHU = 43, DIV = 44, DIVU = 45,
  REM = 46, REMU = 47, FENCE = 48, FENCE_I = 49, ECALL = 50, EBREAK = 51, MRET = 52, WFI = 53,
  CSRRW = 54, CSRRS = 55, CSRRC = 56, CSRRWI = 57, CSRRSI = 58, CSRRCI = 59, LR_W = 60, SC_W = 61,
  AMOSWAP_W = 62, AMOADD_W = 63, AMOXOR_W = 64, AMOAND_W = 65, AMOOR_W = 66, AMOMIN_W = 67,
  AMOMAX_W = 68, AMOMINU_W = 69, AMOMAXU_W = 70,
}

/** The enum as data, typed against OP so neither list can gain a member alone. */
const OP_MIRROR: { [K in keyof typeof OP]: number } = {
  UNDECODED: Op.UNDECODED, ILLEGAL: Op.ILLEGAL, NOP: Op.NOP, LUI: Op.LUI, AUIPC: Op.AUIPC,
  JAL: Op.JAL, JALR: Op.JALR, BEQ: Op.BEQ, BNE: Op.BNE, BLT: Op.BLT, BGE: Op.BGE, BLTU: Op.BLTU,
  BGEU: Op.BGEU, LB: Op.LB, LH: Op.LH, LW: Op.LW, LBU: Op.LBU, LHU: Op.LHU, SB: Op.SB, SH: Op.SH,
  SW: Op.SW, ADDI: Op.ADDI, SLTI: Op.SLTI, SLTIU: Op.SLTIU, XORI: Op.XORI, ORI: Op.ORI,
  ANDI: Op.ANDI, SLLI: Op.SLLI, SRLI: Op.SRLI, SRAI: Op.SRAI, ADD: Op.ADD, SUB: Op.SUB,
  SLL: Op.SLL, SLT: Op.SLT, SLTU: Op.SLTU, XOR: Op.XOR, SRL: Op.SRL, SRA: Op.SRA, OR: Op.OR,
  AND: Op.AND, MUL: Op.MUL, MULH: Op.MULH, MULHSU: Op.MULHSU, MULHU: Op.MULHU, DIV: Op.DIV,
  DIVU: Op.DIVU, REM: Op.REM, REMU: Op.REMU, FENCE: Op.FENCE, FENCE_I: Op.FENCE_I, ECALL: Op.ECALL,
  EBREAK: Op.EBREAK, MRET: Op.MRET, WFI: Op.WFI, CSRRW: Op.CSRRW, CSRRS: Op.CSRRS, CSRRC: Op.CSRRC,
  CSRRWI: Op.CSRRWI, CSRRSI: Op.CSRRSI, CSRRCI: Op.CSRRCI, LR_W: Op.LR_W, SC_W: Op.SC_W,
  AMOSWAP_W: Op.AMOSWAP_W, AMOADD_W: Op.AMOADD_W, AMOXOR_W: Op.AMOXOR_W, AMOAND_W: Op.AMOAND_W,
  AMOOR_W: Op.AMOOR_W, AMOMIN_W: Op.AMOMIN_W, AMOMAX_W: Op.AMOMAX_W, AMOMINU_W: Op.AMOMINU_W,
  AMOMAXU_W: Op.AMOMAXU_W,
};
for (const name of Object.keys(OP) as Array<keyof typeof OP>) {
  assert(OP_MIRROR[name] === OP[name], `exec.ts Op.${name} disagrees with decode.ts OP.${name}`);
}

/** Memory-layout constants the fast path needs as literals (checked against core/memory). */
const enum K {
  CHUNK_BITS = 16,
  CHUNK_MASK = 0xffff,
  PAGE_BITS = 12,
  DECODE_CHUNK_LENGTH = 32768,
  WATCH_CODE = 2,
  MSTATUS_MIE = 8,
}
assert(
  K.CHUNK_BITS === RAM_CHUNK_BITS && K.CHUNK_MASK === (1 << RAM_CHUNK_BITS) - 1 &&
    K.PAGE_BITS === TARGET_PAGE_BITS && K.DECODE_CHUNK_LENGTH === DECODE_CHUNK_LENGTH &&
    K.WATCH_CODE === WATCH_CODE && K.MSTATUS_MIE === MSTATUS_MIE,
  'exec.ts layout constants disagree with core/memory or cpu-bits.ts',
);

/**
 * Run the hart for at most `budgetInsns` instructions. An instruction counts when it retires or
 * traps; taking an interrupt does not count. On return `cpu.pc` is the next instruction and
 * `cpu.icount` has grown by the number executed (the caller's measure of the slice).
 * A halted hart with no enabled interrupt pending returns 'halt' at once; with one, it wakes.
 * @qemu accel/tcg/cpu-exec.c cpu_exec
 */
export function cpuExec(cpu: CpuState, env: CpuEnv, budgetInsns: number): CpuExit {
  assert(Number.isSafeInteger(budgetInsns) && budgetInsns >= 0, `bad budget ${budgetInsns}`);
  if (cpu.exitRequest) {
    cpu.exitRequest = false;
    return 'kick';
  }
  if (cpu.halted) {
    if ((cpu.mip & cpu.mie) === 0) return 'halt';
    cpu.halted = false; // QEMU cpu_handle_halt
  }
  // A reservation restored by cpuLoadState must be watched for stores from other harts.
  if (cpu.resvAddr !== -1) ramWatchReservation(env.as, cpu.resvAddr);
  return execLoop(cpu, env, budgetInsns);
}

function execLoop(cpu: CpuState, env: CpuEnv, budget: number): CpuExit {
  const as = env.as;
  const x = cpu.x;
  const ram8 = as.ram8;
  const ram16 = as.ram16;
  const ram32 = as.ram32;
  const watch = as.watch;
  const decodeTable = as.decode;
  const ramBase = as.ramBase | 0;
  const ramSize = as.ramSize;
  const icount0 = cpu.icount;
  const jit = env.jit !== false;
  let io: Int32Array | null = null; // a block's instruction count comes back in io[0]
  let chunk = -1; // the RAM chunk being run, or -1 for ROM
  let entry = true; // at a block entry: a compiled block may start here
  let scratch: Int32Array | null = null; // decode slot for an instruction fetched from ROM
  let pc = cpu.pc | 0;
  let n = 0;
  let exit: CpuExit = 'budget';

  outer: for (;;) {
    if (cpu.exitRequest) {
      cpu.exitRequest = false;
      exit = 'kick';
      break;
    }
    if ((cpu.mip & cpu.mie) !== 0 && (cpu.mstatus & K.MSTATUS_MIE) !== 0) {
      pc = riscvCpuExecInterrupt(cpu, pc);
    }
    if (n >= budget) break;
    let dec: Int32Array;
    let i: number;
    let iEnd: number;
    const off = (pc - ramBase) | 0;
    if ((pc & 3) !== 0) {
      // Only reachable if pc was set from outside (jumps check their targets).
      n++;
      pc = raiseException(cpu, RISCV_EXCP_INST_ADDR_MIS, pc, pc);
      continue;
    } else if ((off >>> 0) < ramSize) {
      const c = off >>> K.CHUNK_BITS;
      let d = decodeTable[c];
      if (d === null || d === undefined) {
        d = new Int32Array(K.DECODE_CHUNK_LENGTH);
        decodeTable[c] = d;
      }
      dec = d;
      chunk = c;
      i = (off & K.CHUNK_MASK) >>> 1;
      iEnd = Math.min(K.DECODE_CHUNK_LENGTH, (ramSize - (c << K.CHUNK_BITS)) >>> 1);
    } else {
      const insn = addressSpaceFetch(as, pc);
      if (as.txResult !== MEMTX_OK) {
        n++;
        pc = raiseException(cpu, RISCV_EXCP_INST_ACCESS_FAULT, pc, pc);
        continue;
      }
      scratch ??= new Int32Array(2);
      decodeInsn(insn, scratch, 0);
      dec = scratch;
      chunk = -1;
      i = 0;
      iEnd = 2;
    }
    entry = true;

    for (;;) {
      if (entry && jit && chunk >= 0) {
        entry = false;
        const b = blockLookup(as, chunk, i, iEnd, pc);
        if (b !== null && budget - n >= b.len) {
          io ??= new Int32Array(1);
          const from = pc;
          pc = b.fn(x, ram8, ram16, ram32, watch, decodeTable, io, budget - n);
          const ran = io[0]!;
          n += ran;
          i += ((pc - from) | 0) >> 1;
          if ((i >>> 0) >= iEnd) continue outer;
          // A block that stopped before its first instruction leaves it to the interpreter.
          entry = ran !== 0;
          continue;
        }
      }
      if (n >= budget) break outer;
      const w = dec[i]!;
      const imm = dec[i + 1]!;
      n++;
      switch (w & 0xff) {
        case Op.UNDECODED: {
          // First execution of this slot (only RAM slots can be undecoded): decode and retry.
          const o = (pc - ramBase) | 0;
          decodeInsn(ram32[o >>> K.CHUNK_BITS]![(o & K.CHUNK_MASK) >>> 2]!, dec, i);
          watch[o >>> K.PAGE_BITS] = watch[o >>> K.PAGE_BITS]! | K.WATCH_CODE;
          n--;
          continue;
        }
        case Op.ADDI: x[(w >> 8) & 31] = (x[(w >> 16) & 31]! + imm) | 0; break;
        case Op.NOP: break;
        case Op.LUI: x[(w >> 8) & 31] = imm; break;
        case Op.AUIPC: x[(w >> 8) & 31] = (pc + imm) | 0; break;
        case Op.SLTI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! < imm ? 1 : 0; break;
        case Op.SLTIU: x[(w >> 8) & 31] = x[(w >> 16) & 31]! >>> 0 < imm >>> 0 ? 1 : 0; break;
        case Op.XORI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! ^ imm; break;
        case Op.ORI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! | imm; break;
        case Op.ANDI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! & imm; break;
        case Op.SLLI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! << imm; break;
        case Op.SRLI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! >>> imm; break;
        case Op.SRAI: x[(w >> 8) & 31] = x[(w >> 16) & 31]! >> imm; break;
        case Op.ADD: x[(w >> 8) & 31] = (x[(w >> 16) & 31]! + x[(w >> 24) & 31]!) | 0; break;
        case Op.SUB: x[(w >> 8) & 31] = (x[(w >> 16) & 31]! - x[(w >> 24) & 31]!) | 0; break;
        case Op.SLL: x[(w >> 8) & 31] = x[(w >> 16) & 31]! << x[(w >> 24) & 31]!; break;
        case Op.SLT: x[(w >> 8) & 31] = x[(w >> 16) & 31]! < x[(w >> 24) & 31]! ? 1 : 0; break;
        case Op.SLTU:
          x[(w >> 8) & 31] = x[(w >> 16) & 31]! >>> 0 < x[(w >> 24) & 31]! >>> 0 ? 1 : 0;
          break;
        case Op.XOR: x[(w >> 8) & 31] = x[(w >> 16) & 31]! ^ x[(w >> 24) & 31]!; break;
        case Op.SRL: x[(w >> 8) & 31] = x[(w >> 16) & 31]! >>> x[(w >> 24) & 31]!; break;
        case Op.SRA: x[(w >> 8) & 31] = x[(w >> 16) & 31]! >> x[(w >> 24) & 31]!; break;
        case Op.OR: x[(w >> 8) & 31] = x[(w >> 16) & 31]! | x[(w >> 24) & 31]!; break;
        case Op.AND: x[(w >> 8) & 31] = x[(w >> 16) & 31]! & x[(w >> 24) & 31]!; break;
        case Op.MUL: x[(w >> 8) & 31] = Math.imul(x[(w >> 16) & 31]!, x[(w >> 24) & 31]!); break;
        case Op.MULH: x[(w >> 8) & 31] = mulh(x[(w >> 16) & 31]!, x[(w >> 24) & 31]!); break;
        case Op.MULHSU: x[(w >> 8) & 31] = mulhsu(x[(w >> 16) & 31]!, x[(w >> 24) & 31]!); break;
        case Op.MULHU: x[(w >> 8) & 31] = mulhu(x[(w >> 16) & 31]!, x[(w >> 24) & 31]!); break;
        case Op.DIV: {
          const a = x[(w >> 16) & 31]!;
          const b = x[(w >> 24) & 31]!;
          // Division by zero gives -1; INT_MIN / -1 overflows to INT_MIN (no exception).
          x[(w >> 8) & 31] = b === 0 ? -1 : b === -1 ? -a | 0 : (a / b) | 0;
          break;
        }
        case Op.DIVU: {
          const b = x[(w >> 24) & 31]! >>> 0;
          x[(w >> 8) & 31] = b === 0 ? -1 : ((x[(w >> 16) & 31]! >>> 0) / b) | 0;
          break;
        }
        case Op.REM: {
          const a = x[(w >> 16) & 31]!;
          const b = x[(w >> 24) & 31]!;
          // Remainder by zero is the dividend; INT_MIN % -1 is 0.
          x[(w >> 8) & 31] = b === 0 ? a : b === -1 ? 0 : a % b | 0;
          break;
        }
        case Op.REMU: {
          const a = x[(w >> 16) & 31]!;
          const b = x[(w >> 24) & 31]! >>> 0;
          x[(w >> 8) & 31] = b === 0 ? a : ((a >>> 0) % b) | 0;
          break;
        }

        case Op.BEQ:
        case Op.BNE:
        case Op.BLT:
        case Op.BGE:
        case Op.BLTU:
        case Op.BGEU: {
          const a = x[(w >> 16) & 31]!;
          const b = x[(w >> 24) & 31]!;
          let taken: boolean;
          switch (w & 0xff) {
            case Op.BEQ: taken = a === b; break;
            case Op.BNE: taken = a !== b; break;
            case Op.BLT: taken = a < b; break;
            case Op.BGE: taken = a >= b; break;
            case Op.BLTU: taken = a >>> 0 < b >>> 0; break;
            default: taken = a >>> 0 >= b >>> 0; break;
          }
          if (!taken) {
            pc = (pc + 4) | 0;
            i += 2;
          } else {
            if ((imm & 3) !== 0) {
              pc = raiseException(cpu, RISCV_EXCP_INST_ADDR_MIS, (pc + imm) | 0, pc);
              continue outer;
            }
            pc = (pc + imm) | 0;
            i += imm >> 1;
          }
          if ((i >>> 0) >= iEnd) continue outer;
          entry = true;
          continue;
        }
        case Op.JAL: {
          if ((imm & 3) !== 0) {
            pc = raiseException(cpu, RISCV_EXCP_INST_ADDR_MIS, (pc + imm) | 0, pc);
            continue outer;
          }
          const rd = (w >> 8) & 31;
          if (rd !== 0) x[rd] = (pc + 4) | 0;
          pc = (pc + imm) | 0;
          i += imm >> 1;
          if ((i >>> 0) >= iEnd) continue outer;
          entry = true;
          continue;
        }
        case Op.JALR: {
          const target = ((x[(w >> 16) & 31]! + imm) & ~1) | 0;
          if ((target & 2) !== 0) {
            pc = raiseException(cpu, RISCV_EXCP_INST_ADDR_MIS, target, pc);
            continue outer;
          }
          const rd = (w >> 8) & 31;
          if (rd !== 0) x[rd] = (pc + 4) | 0;
          const delta = (target - pc) | 0;
          pc = target;
          i += delta >> 1;
          // Stay in this chunk's loop when the target is in it (calls and returns usually are):
          // i leaves [0, iEnd) exactly when the target is outside the chunk (or the ROM slot).
          if ((i >>> 0) >= iEnd) continue outer;
          entry = true;
          continue;
        }

        case Op.LB:
        case Op.LBU:
        case Op.LH:
        case Op.LHU:
        case Op.LW: {
          const op = w & 0xff;
          const a = (x[(w >> 16) & 31]! + imm) | 0;
          const o = (a - ramBase) | 0;
          const rd = (w >> 8) & 31;
          if ((o >>> 0) < ramSize) {
            const co = o & K.CHUNK_MASK;
            if (op === Op.LW) {
              if ((o & 3) === 0) {
                if (rd !== 0) x[rd] = ram32[o >>> K.CHUNK_BITS]![co >>> 2]!;
                break;
              }
            } else if (op === Op.LBU) {
              if (rd !== 0) x[rd] = ram8[o >>> K.CHUNK_BITS]![co]!;
              break;
            } else if (op === Op.LB) {
              if (rd !== 0) x[rd] = (ram8[o >>> K.CHUNK_BITS]![co]! << 24) >> 24;
              break;
            } else if ((o & 1) === 0) {
              const h = ram16[o >>> K.CHUNK_BITS]![co >>> 1]!;
              if (rd !== 0) x[rd] = op === Op.LH ? (h << 16) >> 16 : h;
              break;
            }
          }
          cpu.icount = icount0 + n; // exact icount for devices (QEMU: precise at I/O)
          pc = helperLoadSlow(cpu, env, op, rd, a >>> 0, pc);
          continue outer;
        }
        case Op.SB:
        case Op.SH:
        case Op.SW: {
          const op = w & 0xff;
          const a = (x[(w >> 16) & 31]! + imm) | 0;
          const o = (a - ramBase) | 0;
          const v = x[(w >> 24) & 31]!;
          const size = op === Op.SW ? 4 : op === Op.SH ? 2 : 1;
          if ((o >>> 0) < ramSize && (o & (size - 1)) === 0) {
            const wb = watch[o >>> K.PAGE_BITS]!;
            if (wb !== 0) {
              // Data next to code (one page) is common in small guests: when the only watcher
              // is the decode cache and this word was never decoded, there is nothing to do.
              const d = wb === K.WATCH_CODE ? decodeTable[o >>> K.CHUNK_BITS] : null;
              if (d === null || d === undefined || d[(o & K.CHUNK_MASK & ~3) >>> 1] !== 0) {
                ramWatchHit(as, o, size);
              }
            }
            const co = o & K.CHUNK_MASK;
            if (size === 4) ram32[o >>> K.CHUNK_BITS]![co >>> 2] = v;
            else if (size === 1) ram8[o >>> K.CHUNK_BITS]![co] = v;
            else ram16[o >>> K.CHUNK_BITS]![co >>> 1] = v;
            break;
          }
          cpu.icount = icount0 + n;
          pc = helperStoreSlow(cpu, env, size, a >>> 0, v, pc);
          continue outer;
        }

        case Op.WFI:
          pc = (pc + 4) | 0;
          if ((cpu.mip & cpu.mie) === 0) {
            cpu.halted = true; // QEMU helper_wfi: cs->halted = 1, EXCP_HLT
            exit = 'halt';
            break outer;
          }
          continue outer;
        default:
          // CSR, A, FENCE(.I), ECALL/EBREAK/MRET and illegal instructions: out of line, and a
          // block boundary afterwards. Counters read as of this instruction, inclusive.
          cpu.icount = icount0 + n;
          pc = helperSystem(cpu, env, w, imm, pc);
          continue outer;
      }
      pc = (pc + 4) | 0;
      i += 2;
      if (i >= iEnd) continue outer;
    }
  }
  cpu.pc = pc >>> 0;
  cpu.icount = icount0 + n;
  return exit;
}
