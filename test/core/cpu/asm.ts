// A tiny RV32IMA + Zicsr assembler for tests: one function per instruction returning its 32-bit
// word, so CPU tests build programs from hand-encoded instructions and need no toolchain.
// Immediates are byte offsets/values as in assembly; encoders assert their ranges.

const check = (cond: boolean, what: string): void => {
  if (!cond) throw new Error(`asm: ${what}`);
};
const reg = (r: number): number => {
  check(Number.isInteger(r) && r >= 0 && r < 32, `bad register ${r}`);
  return r;
};

export const R = {
  zero: 0,
  ra: 1,
  sp: 2,
  gp: 3,
  tp: 4,
  t0: 5,
  t1: 6,
  t2: 7,
  s0: 8,
  s1: 9,
  a0: 10,
  a1: 11,
  a2: 12,
  a3: 13,
  a4: 14,
  a5: 15,
  a6: 16,
  a7: 17,
  s2: 18,
  s3: 19,
  s4: 20,
  s5: 21,
  s6: 22,
  s7: 23,
  s8: 24,
  s9: 25,
  s10: 26,
  s11: 27,
  t3: 28,
  t4: 29,
  t5: 30,
  t6: 31,
} as const;

export function rType(
  op: number,
  rd: number,
  f3: number,
  rs1: number,
  rs2: number,
  f7: number,
): number {
  return (
    ((f7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | op) >>> 0
  );
}
export function iType(op: number, rd: number, f3: number, rs1: number, imm: number): number {
  check(imm >= -2048 && imm < 4096, `I immediate ${imm} out of range`);
  return (((imm & 0xfff) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | op) >>> 0;
}
export function sType(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  check(imm >= -2048 && imm < 2048, `S immediate ${imm} out of range`);
  return (
    ((((imm >> 5) & 0x7f) << 25) |
      (reg(rs2) << 20) |
      (reg(rs1) << 15) |
      (f3 << 12) |
      ((imm & 0x1f) << 7) |
      op) >>>
    0
  );
}
export function bType(f3: number, rs1: number, rs2: number, imm: number): number {
  check(imm >= -4096 && imm < 4096 && (imm & 1) === 0, `B immediate ${imm} out of range`);
  return (
    ((((imm >> 12) & 1) << 31) |
      (((imm >> 5) & 0x3f) << 25) |
      (reg(rs2) << 20) |
      (reg(rs1) << 15) |
      (f3 << 12) |
      (((imm >> 1) & 0xf) << 8) |
      (((imm >> 11) & 1) << 7) |
      0x63) >>>
    0
  );
}
export function uType(op: number, rd: number, imm20: number): number {
  return (((imm20 & 0xfffff) << 12) | (reg(rd) << 7) | op) >>> 0;
}
export function jType(rd: number, imm: number): number {
  check(imm >= -(1 << 20) && imm < 1 << 20 && (imm & 1) === 0, `J immediate ${imm} out of range`);
  return (
    ((((imm >> 20) & 1) << 31) |
      (((imm >> 1) & 0x3ff) << 21) |
      (((imm >> 11) & 1) << 20) |
      (((imm >> 12) & 0xff) << 12) |
      (reg(rd) << 7) |
      0x6f) >>>
    0
  );
}

export const lui = (rd: number, imm20: number): number => uType(0x37, rd, imm20);
export const auipc = (rd: number, imm20: number): number => uType(0x17, rd, imm20);
export const jal = (rd: number, off: number): number => jType(rd, off);
export const jalr = (rd: number, rs1: number, off: number): number => iType(0x67, rd, 0, rs1, off);
export const beq = (a: number, b: number, off: number): number => bType(0, a, b, off);
export const bne = (a: number, b: number, off: number): number => bType(1, a, b, off);
export const blt = (a: number, b: number, off: number): number => bType(4, a, b, off);
export const bge = (a: number, b: number, off: number): number => bType(5, a, b, off);
export const bltu = (a: number, b: number, off: number): number => bType(6, a, b, off);
export const bgeu = (a: number, b: number, off: number): number => bType(7, a, b, off);
export const lb = (rd: number, rs1: number, off: number): number => iType(0x03, rd, 0, rs1, off);
export const lh = (rd: number, rs1: number, off: number): number => iType(0x03, rd, 1, rs1, off);
export const lw = (rd: number, rs1: number, off: number): number => iType(0x03, rd, 2, rs1, off);
export const lbu = (rd: number, rs1: number, off: number): number => iType(0x03, rd, 4, rs1, off);
export const lhu = (rd: number, rs1: number, off: number): number => iType(0x03, rd, 5, rs1, off);
export const sb = (rs2: number, rs1: number, off: number): number => sType(0x23, 0, rs1, rs2, off);
export const sh = (rs2: number, rs1: number, off: number): number => sType(0x23, 1, rs1, rs2, off);
export const sw = (rs2: number, rs1: number, off: number): number => sType(0x23, 2, rs1, rs2, off);
export const addi = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 0, rs1, imm);
export const slti = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 2, rs1, imm);
export const sltiu = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 3, rs1, imm);
export const xori = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 4, rs1, imm);
export const ori = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 6, rs1, imm);
export const andi = (rd: number, rs1: number, imm: number): number => iType(0x13, rd, 7, rs1, imm);
export const slli = (rd: number, rs1: number, sh: number): number => iType(0x13, rd, 1, rs1, sh);
export const srli = (rd: number, rs1: number, sh: number): number => iType(0x13, rd, 5, rs1, sh);
export const srai = (rd: number, rs1: number, sh: number): number =>
  iType(0x13, rd, 5, rs1, sh | 0x400);
const op =
  (f3: number, f7: number) =>
  (rd: number, a: number, b: number): number =>
    rType(0x33, rd, f3, a, b, f7);
export const add = op(0, 0);
export const sub = op(0, 0x20);
export const sll = op(1, 0);
export const slt = op(2, 0);
export const sltu = op(3, 0);
export const xor = op(4, 0);
export const srl = op(5, 0);
export const sra = op(5, 0x20);
export const or = op(6, 0);
export const and = op(7, 0);
export const mul = op(0, 1);
export const mulh = op(1, 1);
export const mulhsu = op(2, 1);
export const mulhu = op(3, 1);
export const div = op(4, 1);
export const divu = op(5, 1);
export const rem = op(6, 1);
export const remu = op(7, 1);
export const fence = (): number => 0x0ff0000f;
export const fenceI = (): number => 0x0000100f;
export const ecall = (): number => 0x00000073;
export const ebreak = (): number => 0x00100073;
export const mret = (): number => 0x30200073;
export const wfi = (): number => 0x10500073;
export const csrrw = (rd: number, csr: number, rs1: number): number => iType(0x73, rd, 1, rs1, csr);
export const csrrs = (rd: number, csr: number, rs1: number): number => iType(0x73, rd, 2, rs1, csr);
export const csrrc = (rd: number, csr: number, rs1: number): number => iType(0x73, rd, 3, rs1, csr);
export const csrrwi = (rd: number, csr: number, u: number): number => iType(0x73, rd, 5, u, csr);
export const csrrsi = (rd: number, csr: number, u: number): number => iType(0x73, rd, 6, u, csr);
export const csrrci = (rd: number, csr: number, u: number): number => iType(0x73, rd, 7, u, csr);
const amo =
  (f5: number) =>
  (rd: number, rs1: number, rs2: number): number =>
    rType(0x2f, rd, 2, rs1, rs2, f5 << 2);
export const lrW = (rd: number, rs1: number): number => amo(0x02)(rd, rs1, 0);
export const scW = amo(0x03);
export const amoswapW = amo(0x01);
export const amoaddW = amo(0x00);
export const amoxorW = amo(0x04);
export const amoandW = amo(0x0c);
export const amoorW = amo(0x08);
export const amominW = amo(0x10);
export const amomaxW = amo(0x14);
export const amominuW = amo(0x18);
export const amomaxuW = amo(0x1c);

/** `li rd, value` as lui + addi (always two words, so code layout is predictable). */
export function li(rd: number, value: number): number[] {
  const v = value | 0;
  const lo = (v << 20) >> 20;
  const hi = ((v - lo) >>> 12) & 0xfffff;
  return [lui(rd, hi), addi(rd, rd, lo)];
}
