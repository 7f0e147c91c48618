// Hashes for record/replay: a 64-bit running hash (two 32-bit lanes, the trace's mixing), plain
// data hashing, and the two machine state hashes. The checkpoint hash is cheap (vCPU registers,
// device registers, clocks, run state, timers; no RAM), so checkpoints can be frequent: a guest
// whose memory diverged computes with different values and shows up in its registers within a
// few instructions. The full hash adds every written RAM chunk; it ends a recording and checks
// seeks. Derived caches (decode caches, compiled blocks, watch bits) are left out on purpose.

import { type ClocksState, icountGetRaw } from '../loop/index.ts';
import type { CpuState } from '../cpu/index.ts';
import type { AddressSpace } from '../memory/index.ts';
import type { SystemMachine } from '../system/index.ts';

/** A running 64-bit hash. */
export interface Hash64 {
  h1: number;
  h2: number;
}

export function hashCreate(): Hash64 {
  return { h1: 0x811c9dc5, h2: 0x6a09e667 };
}

/** Mix one 32-bit word. */
export function hashWord(h: Hash64, w: number): void {
  h.h1 = Math.imul(h.h1 ^ w, 0x01000193) >>> 0;
  let h2 = Math.imul(h.h2 ^ w, 0x5bd1e995);
  h2 ^= h2 >>> 15;
  h.h2 = h2 >>> 0;
}

const TWO_32 = 0x1_0000_0000;

/** Mix a number: integers exactly (both halves), other values by their decimal text. */
export function hashNumber(h: Hash64, v: number): void {
  if (Number.isSafeInteger(v)) {
    hashWord(h, 1);
    hashWord(h, v % TWO_32 | 0);
    hashWord(h, Math.floor(v / TWO_32) | 0);
  } else {
    hashString(h, String(v));
  }
}

export function hashString(h: Hash64, s: string): void {
  hashWord(h, 2);
  hashWord(h, s.length);
  for (let i = 0; i < s.length; i++) hashWord(h, s.charCodeAt(i));
}

export function hashBytes(h: Hash64, b: Uint8Array): void {
  hashWord(h, 3);
  hashWord(h, b.length);
  const words = b.length >>> 2;
  if ((b.byteOffset & 3) === 0 && words > 0) {
    const w32 = new Int32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) hashWord(h, w32[i]!);
  } else {
    for (let i = 0; i < words * 4; i += 4) hashWord(h, b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
  }
  for (let i = words * 4; i < b.length; i++) hashWord(h, b[i]!);
}

/** The hash as 16 hex digits (lane 2 first, like the trace hash). */
export function hashHex(h: Hash64): string {
  // A final avalanche so that nearby inputs give unrelated digits.
  let a = Math.imul(h.h1 ^ (h.h1 >>> 16), 0x85ebca6b);
  a = Math.imul(a ^ (a >>> 13), 0xc2b2ae35) ^ h.h2;
  let b = Math.imul(h.h2 ^ (h.h2 >>> 16), 0x7feb352d) ^ (a >>> 7);
  b ^= b >>> 15;
  return (b >>> 0).toString(16).padStart(8, '0') + (a >>> 0).toString(16).padStart(8, '0');
}

/**
 * Mix plain data: numbers, strings, booleans, null, bigint, arrays, typed arrays, Maps and
 * objects (keys sorted, so the key order does not matter). Functions are skipped. `depth` bounds
 * the nesting (plain device state is shallow).
 */
export function hashValue(h: Hash64, v: unknown, depth = 8): void {
  if (depth < 0) throw new RangeError('hashValue: data nested deeper than expected');
  if (v === null || v === undefined) return hashWord(h, v === null ? 4 : 5);
  switch (typeof v) {
    case 'number': return hashNumber(h, v);
    case 'string': return hashString(h, v);
    case 'boolean': return hashWord(h, v ? 6 : 7);
    case 'bigint': return hashString(h, `${v}n`);
    case 'function': return;
    case 'object': break;
    default: return hashString(h, String(v));
  }
  if (ArrayBuffer.isView(v)) return hashBytes(h, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (Array.isArray(v)) {
    hashWord(h, 8);
    hashWord(h, v.length);
    for (const x of v) hashValue(h, x, depth - 1);
    return;
  }
  if (v instanceof Map) {
    hashWord(h, 9);
    for (const [k, x] of v) {
      hashValue(h, k, depth - 1);
      hashValue(h, x, depth - 1);
    }
    return;
  }
  hashWord(h, 10);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o).sort()) {
    if (typeof o[k] === 'function') continue;
    hashString(h, k);
    hashValue(h, o[k], depth - 1);
  }
}

/** What the state hashes read: the virt machine's parts, named structurally (layer 7 is above). */
export interface HashedMachine extends SystemMachine {
  as: AddressSpace;
  cpus: CpuState[];
  serial: { s: object; fifoTimeoutTimer: { expireNs: number } } | null;
  clint: { s: object; timers: { expireNs: number }[] };
  plic: { s: object };
}

/** CPU fields that are guest-visible or scheduler state (not exitRequest, a kick in flight). */
function hashCpu(h: Hash64, c: CpuState): void {
  for (let i = 0; i < 32; i++) hashWord(h, c.x[i]!);
  for (const v of [c.pc, c.mstatus, c.mie, c.mip, c.mtvec, c.mepc, c.mcause, c.mtval, c.mscratch, c.mcycleOffsetHi,
    c.mcycleOffsetLo, c.minstretOffsetHi, c.minstretOffsetLo, c.icount, c.resvAddr, c.mideleg]) hashNumber(h, v);
  hashWord(h, c.halted ? 1 : 0);
}

function hashClocks(h: Hash64, c: ClocksState): void {
  hashNumber(h, icountGetRaw(c));
  hashNumber(h, c.icountBiasNs);
  hashNumber(h, c.cpuClockOffsetNs);
  hashNumber(h, c.cpuTicksOffset);
  hashWord(h, c.cpuTicksEnabled ? 1 : 0);
  hashNumber(h, c.simNs);
  for (const e of c.enabled) hashWord(h, e ? 1 : 0);
}

/** The cheap state hash of checkpoints (see the header). `extra` mixes in outside state. */
export function replayCheckpointHash(m: HashedMachine, extra?: (h: Hash64) => void): string {
  const h = hashCreate();
  for (const c of m.cpus) hashCpu(h, c);
  hashClocks(h, m.clocks);
  hashString(h, m.runstate.current);
  hashValue(h, m.sys.requests);
  if (m.serial) {
    hashValue(h, m.serial.s);
    hashNumber(h, m.serial.fifoTimeoutTimer.expireNs);
  }
  hashValue(h, m.clint.s);
  for (const t of m.clint.timers) hashNumber(h, t.expireNs);
  hashValue(h, m.plic.s);
  for (const v of m.sys.vcpus) {
    hashWord(h, (v.stop ? 1 : 0) | (v.stopped ? 2 : 0));
  }
  extra?.(h);
  return hashHex(h);
}

/** The full state hash: the checkpoint hash plus the contents of every written RAM chunk. */
export function replayFullStateHash(m: HashedMachine, extra?: (h: Hash64) => void): string {
  const h = hashCreate();
  hashString(h, replayCheckpointHash(m, extra));
  const as = m.as;
  for (let i = 0; i < as.ram8.length; i++) {
    const chunk = as.ram8[i]!;
    if (chunk === as.zero8) continue;
    hashWord(h, i);
    hashBytes(h, chunk);
  }
  return hashHex(h);
}
