// High halves of 32 × 32 → 64-bit products for MULH/MULHSU/MULHU with exact double arithmetic
// (16-bit limbs keep every partial product below 2^53). Used by exec.ts and, passed in, by the
// blocks that translate.ts compiles. Mirrors tcg_gen_mulu2/muls2 as used by trans_rvm.c.inc.

/** High 32 bits of the unsigned product of a and b (taken as uint32), as an int32. */
export function mulhu(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** High 32 bits of the signed × signed product. */
export function mulh(a: number, b: number): number {
  let hi = mulhu(a, b);
  if (a < 0) hi = (hi - b) | 0;
  if (b < 0) hi = (hi - a) | 0;
  return hi;
}

/** High 32 bits of the signed × unsigned product. */
export function mulhsu(a: number, b: number): number {
  const hi = mulhu(a, b);
  return a < 0 ? (hi - b) | 0 : hi;
}
