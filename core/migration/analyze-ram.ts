// The RAM records of a stream as the walker (analyze.ts) sees them: counted by kind per
// section, MEM_SIZE block lists, per-block page counts and, when extracting, the pages
// themselves (views into the input). Accepts what scripts/analyze-migration.py accepts, plus
// XBZRLE and compressed pages, which it skips.
// Invariant: each record consumes at least its 8-byte header, so a walk always ends.

import { type Cursor, WalkError, bytes, counted, u16, u32, u64, u8 } from './analyze-cursor.ts';
import { pyJsonCounters, pyStrRepr } from './analyze-format.ts';
import {
  RAM_SAVE_FLAG_COMPRESS_PAGE, RAM_SAVE_FLAG_CONTINUE, RAM_SAVE_FLAG_EOS, RAM_SAVE_FLAG_HOOK,
  RAM_SAVE_FLAG_MEM_SIZE, RAM_SAVE_FLAG_PAGE, RAM_SAVE_FLAG_XBZRLE, RAM_SAVE_FLAG_ZERO,
} from './ram-block.ts';

const RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200;
const PAGE_FLAGS =
  RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE | RAM_SAVE_FLAG_COMPRESS_PAGE;


/** One RAM block seen in the stream, with its pages when extracting. */
export interface AnalyzeRamBlock {
  idstr: string;
  /** From the MEM_SIZE list (0 if the block was never listed). */
  length: number;
  zero: number;
  normal: number;
  /** Page offset → its bytes (a view into the input) or the fill byte of a ZERO record. */
  pages: Map<number, Uint8Array | number> | null;
}

/** What the RAM walk needs of the stream walk. */
export interface RamWalk {
  c: Cursor;
  pageSize: number;
  extract: boolean;
  blocks: AnalyzeRamBlock[];
  lastBlock: AnalyzeRamBlock | null;
}

const RAM_COUNTER_ORDER = [
  'mem_size_records', 'zero_pages', 'normal_pages', 'xbzrle_pages', 'compressed_pages',
  'multifd_flush', 'eos', 'continue_records', 'named_records',

] as const;

function ramBlock(w: RamWalk, idstr: string): AnalyzeRamBlock {
  let b = w.blocks.find((x) => x.idstr === idstr);
  if (b === undefined) {
    b = { idstr, length: 0, zero: 0, normal: 0, pages: w.extract ? new Map() : null };
    w.blocks.push(b);
  }
  return b;
}

/** RAM records up to EOS: the counters JSON and the MEM_SIZE line, if any. */
export function walkRam(w: RamWalk): { counters: string; extra: string[] } {
  const c = w.c;
  const count = new Map<string, number>();
  const inc = (k: string): void => {
    count.set(k, (count.get(k) ?? 0) + 1);
  };
  const extra: string[] = [];
  const mask = w.pageSize - 1;
  for (;;) {
    const at = c.p;
    const hi = u32(c);
    const lo = u32(c);
    let flags = lo & mask;
    const addr = hi * 0x1_0000_0000 + (lo - flags);
    if (flags & RAM_SAVE_FLAG_MEM_SIZE) {
      inc('mem_size_records');
      extra.push(walkMemSize(w, (BigInt(hi) << 32n) | BigInt(lo - flags)));
      flags &= ~RAM_SAVE_FLAG_MEM_SIZE;
    }
    if (flags & PAGE_FLAGS) {
      walkPage(w, flags, addr, inc, at);
      flags &= ~(PAGE_FLAGS | RAM_SAVE_FLAG_CONTINUE);
    }
    if (flags & RAM_SAVE_FLAG_HOOK) {
      throw new WalkError(`RAM hook record at 0x${at.toString(16)} (RDMA) cannot be walked`);
    }
    if (flags & RAM_SAVE_FLAG_MULTIFD_FLUSH) {
      inc('multifd_flush');
      continue;
    }
    if (flags & RAM_SAVE_FLAG_EOS) {
      inc('eos');
      break;
    }
    if (flags !== 0) {
      throw new WalkError(`unknown RAM flags 0x${flags.toString(16)} at 0x${at.toString(16)}`);
    }
  }
  const entries = RAM_COUNTER_ORDER.filter((k) => count.has(k))
    .map((k): [string, number] => [k, count.get(k)!]);
  return { counters: pyJsonCounters(entries), extra };
}

function walkMemSize(w: RamWalk, total: bigint): string {
  const parts: string[] = [];
  let left = total;
  while (left > 0n) {
    const name = counted(w.c);
    const len = u64(w.c);
    if (len === 0n) {
      throw new WalkError(`RAM block ${pyStrRepr(name)} of length 0 in the block list`);
    }
    left -= len;
    const b = ramBlock(w, name);
    b.length = Number(len);
    parts.push(`${name}=0x${len.toString(16)}`);
  }
  return `      MEM_SIZE total=0x${total.toString(16)}: ${parts.join(', ')}`;
}

function walkPage(
  w: RamWalk, flags: number, addr: number, inc: (k: string) => void, at: number,
): void {
  const c = w.c;
  let block: AnalyzeRamBlock;
  if (flags & RAM_SAVE_FLAG_CONTINUE) {
    if (w.lastBlock === null) {
      throw new WalkError(`CONTINUE page record at 0x${at.toString(16)} without a previous block`);
    }
    block = w.lastBlock;
    inc('continue_records');
  } else {
    block = ramBlock(w, counted(c));
    w.lastBlock = block;
    inc('named_records');
  }
  if (flags & RAM_SAVE_FLAG_ZERO) {
    const fill = u8(c);
    inc('zero_pages');
    block.zero++;
    block.pages?.set(addr, fill);
  } else if (flags & RAM_SAVE_FLAG_PAGE) {
    const data = bytes(c, w.pageSize);
    inc('normal_pages');
    block.normal++;
    block.pages?.set(addr, data);
  } else if (flags & RAM_SAVE_FLAG_XBZRLE) {
    u8(c);
    bytes(c, u16(c));
    inc('xbzrle_pages');
  } else {
    bytes(c, u32(c));
    inc('compressed_pages');
  }
}
