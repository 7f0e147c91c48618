// Block compiler: turns a hot run of simple instructions (ALU, M, aligned RAM loads/stores,
// ending at a branch or jump) into one JavaScript function, the way QEMU's TCG translates a
// TB. A block has exactly the interpreter's semantics: it leaves *before* any instruction the
// fast path cannot finish (MMIO, misaligned or unmapped access, a store to a watched page other
// than plain data beside code, a misaligned jump target), so the interpreter runs that one; it
// never runs more instructions than the caller's budget allows. Blocks are derived state
// (ram.blocks), dropped when ram.decodeGen moves, and compiled code depends only on the guest's
// instructions, so using them or not cannot change what a guest observes.

import {
  RAM_CHUNK_BITS, RAM_CHUNK_SIZE, TARGET_PAGE_BITS, WATCH_CODE, type AddressSpace,
} from '../memory/index.ts';
import { OP, decodeInsn } from './decode.ts';
import { mulh, mulhsu, mulhu } from './mul.ts';

/** A compiled block. Returns the next pc (int32) and leaves the instructions run in io[0]. */
export type BlockFn = (
  x: Int32Array, ram8: Uint8Array[], ram16: Uint16Array[], ram32: Int32Array[],
  watch: Uint8Array, decode: Array<Int32Array | null>, io: Int32Array, left: number,
) => number;

export interface Block {
  fn: BlockFn;
  /** Instructions in one pass: the budget the block needs before it may be entered. */
  len: number;
  /** ram.decodeGen of the chunk when compiled; a block from another generation is stale. */
  gen: number;
}

/** Per-chunk table: the block starting at each slot (null: cannot compile), and entry counts. */
export interface ChunkBlocks {
  fns: Array<Block | null | undefined>;
  hits: Uint8Array;
}

export const BLOCK_MAX_INSNS = 64;
/** Entries into a slot before its block is compiled (cold code stays interpreted). */
export const BLOCK_HOT_THRESHOLD = 8;

const ALU: Record<number, (a: string, b: string) => string> = {
  [OP.ADDI]: (a, b) => `(${a} + ${b}) | 0`, [OP.ADD]: (a, b) => `(${a} + ${b}) | 0`,
  [OP.SUB]: (a, b) => `(${a} - ${b}) | 0`,
  [OP.SLTI]: (a, b) => `${a} < ${b} ? 1 : 0`, [OP.SLT]: (a, b) => `${a} < ${b} ? 1 : 0`,
  [OP.SLTIU]: (a, b) => `${a} >>> 0 < ${b} >>> 0 ? 1 : 0`,
  [OP.SLTU]: (a, b) => `${a} >>> 0 < ${b} >>> 0 ? 1 : 0`,
  [OP.XORI]: (a, b) => `${a} ^ ${b}`, [OP.XOR]: (a, b) => `${a} ^ ${b}`,
  [OP.ORI]: (a, b) => `${a} | ${b}`, [OP.OR]: (a, b) => `${a} | ${b}`,
  [OP.ANDI]: (a, b) => `${a} & ${b}`, [OP.AND]: (a, b) => `${a} & ${b}`,
  [OP.SLLI]: (a, b) => `${a} << ${b}`, [OP.SLL]: (a, b) => `${a} << ${b}`,
  [OP.SRLI]: (a, b) => `(${a} >>> ${b}) | 0`, [OP.SRL]: (a, b) => `(${a} >>> ${b}) | 0`,
  [OP.SRAI]: (a, b) => `${a} >> ${b}`, [OP.SRA]: (a, b) => `${a} >> ${b}`,
  [OP.MUL]: (a, b) => `Math.imul(${a}, ${b})`,
  [OP.MULH]: (a, b) => `mulh(${a}, ${b})`, [OP.MULHSU]: (a, b) => `mulhsu(${a}, ${b})`,
  [OP.MULHU]: (a, b) => `mulhu(${a}, ${b})`,
  [OP.DIV]: (a, b) => `(t1 = ${a}, t2 = ${b}, t2 === 0 ? -1 : t2 === -1 ? -t1 | 0 : (t1 / t2) | 0)`,
  [OP.DIVU]: (a, b) => `(t1 = ${a}, t2 = ${b} >>> 0, t2 === 0 ? -1 : ((t1 >>> 0) / t2) | 0)`,
  [OP.REM]: (a, b) => `(t1 = ${a}, t2 = ${b}, t2 === 0 ? t1 : t2 === -1 ? 0 : t1 % t2 | 0)`,
  [OP.REMU]: (a, b) => `(t1 = ${a}, t2 = ${b} >>> 0, t2 === 0 ? t1 : ((t1 >>> 0) % t2) | 0)`,
};
const IMM_OPS = new Set<number>([OP.ADDI, OP.SLTI, OP.SLTIU, OP.XORI, OP.ORI, OP.ANDI, OP.SLLI,
  OP.SRLI, OP.SRAI]);
const BRANCH: Record<number, (a: string, b: string) => string> = {
  [OP.BEQ]: (a, b) => `${a} === ${b}`, [OP.BNE]: (a, b) => `${a} !== ${b}`,
  [OP.BLT]: (a, b) => `${a} < ${b}`, [OP.BGE]: (a, b) => `${a} >= ${b}`,
  [OP.BLTU]: (a, b) => `${a} >>> 0 < ${b} >>> 0`, [OP.BGEU]: (a, b) => `${a} >>> 0 >= ${b} >>> 0`,
};
const LOAD: Record<number, { align: number; read: string }> = {
  [OP.LW]: { align: 3, read: 'ram32[o >>> 16][(o & 65535) >>> 2]' },
  [OP.LB]: { align: 0, read: '(ram8[o >>> 16][o & 65535] << 24) >> 24' },
  [OP.LBU]: { align: 0, read: 'ram8[o >>> 16][o & 65535]' },
  [OP.LH]: { align: 1, read: '(ram16[o >>> 16][(o & 65535) >>> 1] << 16) >> 16' },
  [OP.LHU]: { align: 1, read: 'ram16[o >>> 16][(o & 65535) >>> 1]' },
};
const STORE: Record<number, { align: number; write: string }> = {
  [OP.SW]: { align: 3, write: 'ram32[o >>> 16][(o & 65535) >>> 2]' },
  [OP.SH]: { align: 1, write: 'ram16[o >>> 16][(o & 65535) >>> 1]' },
  [OP.SB]: { align: 0, write: 'ram8[o >>> 16][o & 65535]' },
};

/** Decode slot entry `at` of chunk `c` from RAM, as the interpreter does on first execution. */
function decodeChunkSlot(as: AddressSpace, c: number, at: number): void {
  const off = c * RAM_CHUNK_SIZE + at * 2;
  const dec = as.decode[c]!;
  decodeInsn(as.ram32[c]![at >>> 1]!, dec, at);
  as.watch[off >>> TARGET_PAGE_BITS] = as.watch[off >>> TARGET_PAGE_BITS]! | WATCH_CODE;
}

/**
 * Compile the block starting at decode slot `i` (entry index, 2 per instruction) of chunk `c`
 * whose first instruction is at `pc`. Returns null when the first instruction is not one a
 * block can hold. Decodes slots that were not decoded yet, as the interpreter would.
 */
export function compileBlock(
  as: AddressSpace, c: number, i: number, iEnd: number, pc: number,
): Block | null {
  const dec = as.decode[c];
  if (!dec) return null;
  const x = (r: number): string => (r === 0 ? '0' : `x[${r}]`);
  const pcAt = (k: number): number => (pc + 4 * k) | 0;
  const exitAt = (k: number): string => `{ io[0] = done + ${k}; return ${pcAt(k)}; }`;
  const body: string[] = [];
  let len = 0;
  let tail = '';
  let selfLoop = false;
  for (let k = 0; k < BLOCK_MAX_INSNS && i + 2 * k < iEnd; k++) {
    const at = i + 2 * k;
    if (dec[at] === 0) decodeChunkSlot(as, c, at);
    const w = dec[at]!;
    const imm = dec[at + 1]!;
    const op = w & 0xff;
    const rd = (w >> 8) & 31;
    const rs1 = (w >> 16) & 31;
    const rs2 = (w >> 24) & 31;
    const alu = ALU[op];
    const load = LOAD[op];
    const store = STORE[op];
    const branch = BRANCH[op];
    if (op === OP.NOP) {
      // nothing
    } else if (op === OP.LUI) {
      body.push(`x[${rd}] = ${imm};`);
    } else if (op === OP.AUIPC) {
      body.push(`x[${rd}] = ${(pcAt(k) + imm) | 0};`);
    } else if (alu) {
      body.push(`x[${rd}] = ${alu(x(rs1), IMM_OPS.has(op) ? String(imm) : x(rs2))};`);
    } else if (load) {
      body.push(`a = (${x(rs1)} + ${imm}) | 0; o = (a - ${as.ramBase | 0}) | 0;`);
      body.push(`if ((o >>> 0) >= ${as.ramSize} || (o & ${load.align}) !== 0) ${exitAt(k)}`);
      body.push(rd === 0 ? `${load.read};` : `x[${rd}] = ${load.read};`);
    } else if (store) {
      body.push(`a = (${x(rs1)} + ${imm}) | 0; o = (a - ${as.ramBase | 0}) | 0;`);
      body.push(`if ((o >>> 0) >= ${as.ramSize} || (o & ${store.align}) !== 0) ${exitAt(k)}`);
      // Only plain data beside decoded code is stored here; every other watcher is the
      // interpreter's (ramWatchHit), so leave before the store.
      body.push(`wb = watch[o >>> 12]; if (wb !== 0) { if (wb !== ${WATCH_CODE}) ${exitAt(k)}`);
      body.push(`d = dtab[o >>> ${RAM_CHUNK_BITS}];`);
      body.push(`if (d === null || d[(o & 65532) >>> 1] !== 0) ${exitAt(k)} }`);
      body.push(`${store.write} = ${x(rs2)};`);
    } else if (branch && (imm & 3) === 0) {
      const target = (pcAt(k) + imm) | 0;
      const cond = branch(x(rs1), x(rs2));
      if (target === (pc | 0)) {
        // A branch back to the block's start closes a loop: run it inside the function.
        len = k + 1;
        selfLoop = true;
        tail = `if (!(${cond})) { io[0] = done + ${len}; return ${pcAt(len)}; }`;
        break;
      }
      // Any other branch is a side exit; the block goes on along the not-taken path.
      body.push(`if (${cond}) { io[0] = done + ${k + 1}; return ${target}; }`);
    } else if (op === OP.JAL && (imm & 3) === 0) {
      len = k + 1;
      const target = (pcAt(k) + imm) | 0;
      if (rd !== 0) body.push(`x[${rd}] = ${pcAt(len)};`);
      selfLoop = target === (pc | 0);
      tail = selfLoop ? '' : `io[0] = done + ${len}; return ${target};`;
      break;
    } else if (op === OP.JALR) {
      len = k + 1;
      body.push(`a = (${x(rs1)} + ${imm}) & -2; if ((a & 2) !== 0) ${exitAt(k)}`);
      if (rd !== 0) body.push(`x[${rd}] = ${pcAt(len)};`);
      tail = `io[0] = done + ${len}; return a | 0;`;
      break;
    } else {
      break; // not block material: the block ends before it
    }
    len = k + 1;
    tail = `io[0] = done + ${len}; return ${pcAt(len)};`;
  }
  if (len === 0) return null;
  const code = selfLoop
    ? `for (;;) {\n${body.join('\n')}\n${tail}\ndone += ${len};\n` +
      `if (left - done < ${len}) { io[0] = done; return ${pc | 0}; }\n}`
    : `${body.join('\n')}\n${tail}`;
  const src = `return function block(x, ram8, ram16, ram32, watch, dtab, io, left) {\n` +
    `let done = 0, a = 0, o = 0, wb = 0, d = null, t1 = 0, t2 = 0;\n${code}\n};`;
  // The source is built only from decoded fields and constants, never from guest strings.
  const factory = new Function('mulhu', 'mulh', 'mulhsu', src) as (...f: unknown[]) => BlockFn;
  const fn = factory(mulhu, mulh, mulhsu);
  return { fn, len, gen: as.decodeGen[c]! };
}

/**
 * The block to run at entry slot `i` of chunk `c` (pc `pc`), or null to interpret: counts
 * entries, compiles a slot once it is hot, and drops blocks whose chunk's code changed.
 */
export function blockLookup(
  as: AddressSpace, c: number, i: number, iEnd: number, pc: number,
): Block | null {
  let tab = as.blocks[c] as ChunkBlocks | null;
  if (tab === null) {
    const slots = RAM_CHUNK_SIZE >>> 2;
    tab = { fns: new Array<Block | null | undefined>(slots), hits: new Uint8Array(slots) };
    as.blocks[c] = tab;
  }
  const slot = i >>> 1;
  let b = tab.fns[slot];
  if (b !== undefined && b !== null && b.gen !== as.decodeGen[c]) {
    b = undefined; // the chunk's code changed since this block was compiled
    tab.hits[slot] = 0;
  }
  if (b === undefined) {
    const hits = tab.hits[slot]! + 1;
    tab.hits[slot] = hits;
    b = hits >= BLOCK_HOT_THRESHOLD ? compileBlock(as, c, i, iEnd, pc) : undefined;
    tab.fns[slot] = b;
  }
  return b ?? null;
}
