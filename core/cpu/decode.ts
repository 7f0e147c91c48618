// Decoder for RV32IMA + Zicsr + Zifencei: turns a 32-bit instruction word into the two int32
// words the interpreter's decode cache stores per instruction slot (DECODE_STRIDE = 2):
//   word 0: op | rd << 8 | rs1 << 16 | rs2 << 24   (op 0 means "not decoded yet")
//   word 1: the immediate (sign-extended), the CSR number, or for OP.ILLEGAL the value for mtval.
// Mirrors target/riscv/insn32.decode + translate.c decode_opc. Pure: no state, no allocation.

/**
 * Op numbers of the decode cache. Dense, so the interpreter's switch compiles to a jump table;
 * exec.ts mirrors them as a const enum (esbuild inlines that as literals) and checks at load
 * that both agree.
 */
export const OP = {
  UNDECODED: 0, ILLEGAL: 1, NOP: 2, LUI: 3, AUIPC: 4, JAL: 5, JALR: 6, BEQ: 7, BNE: 8, BLT: 9,
  BGE: 10, BLTU: 11, BGEU: 12, LB: 13, LH: 14, LW: 15, LBU: 16, LHU: 17, SB: 18, SH: 19, SW: 20,
  ADDI: 21, SLTI: 22, SLTIU: 23, XORI: 24, ORI: 25, ANDI: 26, SLLI: 27, SRLI: 28, SRAI: 29,
  ADD: 30, SUB: 31, SLL: 32, SLT: 33, SLTU: 34, XOR: 35, SRL: 36, SRA: 37, OR: 38, AND: 39,
  MUL: 40, MULH: 41, MULHSU: 42, MULHU: 43, DIV: 44, DIVU: 45, REM: 46, REMU: 47, FENCE: 48,
  FENCE_I: 49, ECALL: 50, EBREAK: 51, MRET: 52, WFI: 53, CSRRW: 54, CSRRS: 55, CSRRC: 56,
  CSRRWI: 57, CSRRSI: 58, CSRRCI: 59, LR_W: 60, SC_W: 61, AMOSWAP_W: 62, AMOADD_W: 63,
  AMOXOR_W: 64, AMOAND_W: 65, AMOOR_W: 66, AMOMIN_W: 67, AMOMAX_W: 68, AMOMINU_W: 69,
  AMOMAXU_W: 70,
} as const;

const BRANCH_OPS = [OP.BEQ, OP.BNE, -1, -1, OP.BLT, OP.BGE, OP.BLTU, OP.BGEU];
const LOAD_OPS = [OP.LB, OP.LH, OP.LW, -1, OP.LBU, OP.LHU, -1, -1];
const STORE_OPS = [OP.SB, OP.SH, OP.SW, -1, -1, -1, -1, -1];
const OPIMM_OPS = [OP.ADDI, OP.SLLI, OP.SLTI, OP.SLTIU, OP.XORI, OP.SRLI, OP.ORI, OP.ANDI];
const OP_OPS = [OP.ADD, OP.SLL, OP.SLT, OP.SLTU, OP.XOR, OP.SRL, OP.OR, OP.AND];
const MULDIV_OPS = [OP.MUL, OP.MULH, OP.MULHSU, OP.MULHU, OP.DIV, OP.DIVU, OP.REM, OP.REMU];
const CSR_OPS = [-1, OP.CSRRW, OP.CSRRS, OP.CSRRC, -1, OP.CSRRWI, OP.CSRRSI, OP.CSRRCI];
/** AMO funct5 → op. */
const AMO_OPS: Record<number, number> = {
  0x00: OP.AMOADD_W, 0x01: OP.AMOSWAP_W, 0x02: OP.LR_W, 0x03: OP.SC_W, 0x04: OP.AMOXOR_W,
  0x08: OP.AMOOR_W, 0x0c: OP.AMOAND_W, 0x10: OP.AMOMIN_W, 0x14: OP.AMOMAX_W,
  0x18: OP.AMOMINU_W, 0x1c: OP.AMOMAXU_W,
};

function pack(op: number, rd: number, rs1: number, rs2: number): number {
  return op | (rd << 8) | (rs1 << 16) | (rs2 << 24);
}

function immI(insn: number): number {
  return insn >> 20;
}
function immS(insn: number): number {
  return ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f);
}
function immB(insn: number): number {
  return (
    ((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11) | (((insn >>> 25) & 0x3f) << 5) |
    (((insn >>> 8) & 0xf) << 1)
  );
}
function immJ(insn: number): number {
  return (
    ((insn >> 31) << 20) | (((insn >>> 12) & 0xff) << 12) | (((insn >>> 20) & 1) << 11) |
    (((insn >>> 21) & 0x3ff) << 1)
  );
}

/**
 * Decode `insn` into `out[i]` (packed op and registers) and `out[i + 1]` (immediate).
 * Never leaves OP.UNDECODED. An instruction this hart lacks decodes to OP.ILLEGAL with its mtval:
 * the low 16 bits for a compressed encoding (QEMU 7.2 fetched only a halfword), else all 32.
 * @qemu target/riscv/translate.c decode_opc
 */
export function decodeInsn(insn: number, out: Int32Array, i: number): void {
  insn |= 0;
  let op = -1;
  let imm = 0;
  const opcode = insn & 0x7f;
  const rd = (insn >>> 7) & 31;
  const f3 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const f7 = insn >>> 25;
  switch (opcode) {
    case 0x37: op = OP.LUI; imm = insn & ~0xfff; break;
    case 0x17: op = OP.AUIPC; imm = insn & ~0xfff; break;
    case 0x6f: op = OP.JAL; imm = immJ(insn); break;
    case 0x67: if (f3 === 0) { op = OP.JALR; imm = immI(insn); } break;
    case 0x63: op = BRANCH_OPS[f3] ?? -1; imm = immB(insn); break;
    case 0x03: op = LOAD_OPS[f3] ?? -1; imm = immI(insn); break;
    case 0x23: op = STORE_OPS[f3] ?? -1; imm = immS(insn); break;
    case 0x13:
      op = OPIMM_OPS[f3] ?? -1;
      imm = immI(insn);
      if (f3 === 1) { if (f7 !== 0) op = -1; imm = rs2; } // SLLI: shamt[5] must be 0 on RV32
      if (f3 === 5) { // SRLI / SRAI
        if (f7 === 0x20) op = OP.SRAI;
        else if (f7 !== 0) op = -1;
        imm = rs2;
      }
      break;
    case 0x33:
      if (f7 === 0) op = OP_OPS[f3] ?? -1;
      else if (f7 === 1) op = MULDIV_OPS[f3] ?? -1;
      else if (f7 === 0x20 && f3 === 0) op = OP.SUB;
      else if (f7 === 0x20 && f3 === 5) op = OP.SRA;
      break;
    case 0x0f:
      if (f3 === 0) op = OP.FENCE;
      else if (f3 === 1) op = OP.FENCE_I;
      break;
    case 0x73:
      if (f3 === 0) {
        if (insn === 0x0000_0073) op = OP.ECALL;
        else if (insn === 0x0010_0073) op = OP.EBREAK;
        else if (insn === 0x3020_0073) op = OP.MRET;
        else if (insn === 0x1050_0073) op = OP.WFI;
      } else {
        op = CSR_OPS[f3] ?? -1;
        imm = insn >>> 20; // the CSR number
      }
      break;
    case 0x2f:
      if (f3 === 2) {
        op = AMO_OPS[insn >>> 27] ?? -1;
        if (op === OP.LR_W && rs2 !== 0) op = -1;
      }
      break;
    default:
      break;
  }
  if (op === -1) {
    out[i] = OP.ILLEGAL;
    out[i + 1] = (insn & 3) !== 3 ? insn & 0xffff : insn;
    return;
  }
  // x0 destinations: ALU results are discarded, so the instruction is a no-op.
  if (rd === 0 && ((op >= OP.ADDI && op <= OP.REMU) || op === OP.LUI || op === OP.AUIPC)) {
    op = OP.NOP;
  }
  out[i] = pack(op, rd, rs1, rs2);
  out[i + 1] = imm;
}

/**
 * Rebuild a CSR instruction's bits from its decoded form, for mtval on an illegal CSR access
 * (the decode cache does not keep raw words).
 */
export function csrInsnBits(op: number, rd: number, rs1: number, csr: number): number {
  const f3 = op - OP.CSRRW + (op >= OP.CSRRWI ? 2 : 1);
  return ((csr << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73) | 0;
}
