// A deliberately simple RV32IM reference interpreter for differential tests: it decodes every
// instruction from memory each time, uses BigInt for the high multiplies and has no caches, so
// its bugs are unlikely to match those of core/cpu/exec.ts. It covers what the fuzzer
// generates: ALU, M, loads, stores, branches, JAL/JALR; memory is one flat byte array.

export interface RefState {
  pc: number;
  x: Int32Array;
  mem: Uint8Array;
  base: number;
}

const sext = (v: number, bits: number): number => (v << (32 - bits)) >> (32 - bits);

function load(s: RefState, addr: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | s.mem[(addr >>> 0) - s.base + i]!;
  return v;
}

function store(s: RefState, addr: number, size: number, v: number): void {
  for (let i = 0; i < size; i++) s.mem[(addr >>> 0) - s.base + i] = (v >>> (8 * i)) & 0xff;
}

function mulHigh(a: bigint, b: bigint): number {
  return Number(BigInt.asIntN(32, (a * b) >> 32n));
}

function alu(f3: number, f7: number, a: number, b: number, imm: boolean): number {
  if (f7 === 1 && !imm) {
    const ua = BigInt(a >>> 0),
      ub = BigInt(b >>> 0),
      sa = BigInt(a),
      sb = BigInt(b);
    switch (f3) {
      case 0:
        return Math.imul(a, b);
      case 1:
        return mulHigh(sa, sb);
      case 2:
        return mulHigh(sa, ub);
      case 3:
        return mulHigh(ua, ub);
      case 4:
        return b === 0 ? -1 : a === -0x80000000 && b === -1 ? a : Math.trunc(a / b) | 0;
      case 5:
        return b === 0 ? -1 : Math.trunc((a >>> 0) / (b >>> 0)) | 0;
      case 6:
        return b === 0 ? a : a === -0x80000000 && b === -1 ? 0 : (a % b) | 0;
      default:
        return b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
    }
  }
  switch (f3) {
    case 0:
      return !imm && f7 === 0x20 ? (a - b) | 0 : (a + b) | 0;
    case 1:
      return a << (b & 31);
    case 2:
      return a < b ? 1 : 0;
    case 3:
      return a >>> 0 < b >>> 0 ? 1 : 0;
    case 4:
      return a ^ b;
    case 5:
      return f7 === 0x20 ? a >> (b & 31) : (a >>> (b & 31)) | 0;
    case 6:
      return a | b;
    default:
      return a & b;
  }
}

/** Execute one instruction; returns false (without changing state) for anything unsupported. */
export function refStep(s: RefState): boolean {
  const insn = load(s, s.pc, 4);
  const op = insn & 0x7f,
    rd = (insn >>> 7) & 31,
    f3 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 31,
    rs2 = (insn >>> 20) & 31,
    f7 = insn >>> 25;
  const a = s.x[rs1]!,
    b = s.x[rs2]!;
  let next = (s.pc + 4) | 0;
  let result: number | null = null;
  switch (op) {
    case 0x37:
      result = insn & ~0xfff;
      break;
    case 0x17:
      result = (s.pc + (insn & ~0xfff)) | 0;
      break;
    case 0x13:
      result = alu(f3, f3 === 5 ? f7 & 0x20 : 0, a, f3 === 1 || f3 === 5 ? rs2 : insn >> 20, true);
      break;
    case 0x33:
      result = alu(f3, f7, a, b, false);
      break;
    case 0x03: {
      const addr = (a + (insn >> 20)) | 0;
      const size = 1 << (f3 & 3);
      const v = load(s, addr, size);
      result = f3 & 4 ? (size === 4 ? v : v & ((1 << (8 * size)) - 1)) : sext(v, 8 * size);
      break;
    }
    case 0x23:
      store(s, (a + (((insn >> 25) << 5) | rd)) | 0, 1 << f3, b);
      break;
    case 0x63: {
      const off =
        ((insn >> 31) << 12) |
        (((insn >>> 7) & 1) << 11) |
        (((insn >>> 25) & 0x3f) << 5) |
        (((insn >>> 8) & 0xf) << 1);
      const conds = [
        a === b,
        a !== b,
        false,
        false,
        a < b,
        a >= b,
        a >>> 0 < b >>> 0,
        a >>> 0 >= b >>> 0,
      ];
      if (conds[f3]) next = (s.pc + off) | 0;
      break;
    }
    case 0x6f: {
      const off =
        ((insn >> 31) << 20) |
        (((insn >>> 12) & 0xff) << 12) |
        (((insn >>> 20) & 1) << 11) |
        (((insn >>> 21) & 0x3ff) << 1);
      result = next;
      next = (s.pc + off) | 0;
      break;
    }
    case 0x67:
      result = next;
      next = (a + (insn >> 20)) & ~1;
      break;
    default:
      return false;
  }
  if (result !== null && rd !== 0) s.x[rd] = result;
  s.pc = next;
  return true;
}
