// The machine's seeded PRNG (xoshiro128**). Its whole state is four uint32 words kept in the
// Machine, so it is saved and restored with the VM and two machines with the same seed draw
// the same numbers. The kernel draws no randomness from the host: this generator is its only source.

/** PRNG state: plain data, snapshot-able. */
export interface PrngState {
  s: [number, number, number, number];
}

/** Expand a 32-bit seed into a full state with splitmix32, so nearby seeds diverge at once. */
export function prngCreate(seed: number): PrngState {
  let x = seed >>> 0;
  const next = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s: [number, number, number, number] = [next(), next(), next(), next()];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the all-zero state is a fixed point
  return { s };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Next uint32 (0 .. 2^32-1). */
export function prngNextU32(p: PrngState): number {
  const s = p.s;
  const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
  const t = (s[1] << 9) >>> 0;
  s[2] = (s[2] ^ s[0]) >>> 0;
  s[3] = (s[3] ^ s[1]) >>> 0;
  s[1] = (s[1] ^ s[2]) >>> 0;
  s[0] = (s[0] ^ s[3]) >>> 0;
  s[2] = (s[2] ^ t) >>> 0;
  s[3] = rotl(s[3], 11);
  return result;
}

/** Uniform integer in [0, n) for 1 <= n <= 2^32, without modulo bias. */
export function prngInt(p: PrngState, n: number): number {
  if (!(Number.isInteger(n) && n >= 1 && n <= 0x1_0000_0000)) {
    throw new RangeError(`prngInt: bound ${n} is not an integer in [1, 2^32]`);
  }
  const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
  for (let i = 0; i < 64; i++) {
    const v = prngNextU32(p);
    if (v < limit) return v % n;
  }
  return prngNextU32(p) % n; // practically unreachable; keeps the loop bounded
}

/** A float in [0, 1) with 32 bits of randomness. */
export function prngFloat(p: PrngState): number {
  return prngNextU32(p) / 0x1_0000_0000;
}

/** Derive an independent sub-seed (for a device or a test fixture) from the machine's stream. */
export function prngDeriveSeed(p: PrngState): number {
  return prngNextU32(p);
}
