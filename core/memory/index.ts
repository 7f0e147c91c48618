// Public API of core/memory: the address space (RAM allocated on first write, ROM, MMIO regions),
// its slow-path accessors, dirty logging and page enumeration for migration, and the kernel
// loader. core/cpu reads the RAM chunk tables directly for its fast path.

export {
  MEMTX_OK, MEMTX_ERROR, MEMTX_DECODE_ERROR,
  addressSpaceCreate, addressSpaceAddRegion, addressSpaceAddRom,
  addressSpaceLd, addressSpaceSt, addressSpaceFetch, addressSpaceRead, addressSpaceWrite,
} from './address-space.ts';
export type { AddressSpace, MemoryRegion, RomRegion } from './address-space.ts';
export {
  RAM_BASE, RAM_SIZE_MAX, TARGET_PAGE_BITS, TARGET_PAGE_SIZE, RAM_CHUNK_BITS, RAM_CHUNK_SIZE,
  DECODE_STRIDE, DECODE_CHUNK_LENGTH,
  PAGES_PER_CHUNK, WATCH_UNWRITTEN, WATCH_CODE, WATCH_RESERVED, WATCH_DIRTY_LOG,
  ramWatchHit, ramWatchReservation, ramAddReservationHolder, ramFlushDecode,
  ramDirtyLogStart, ramDirtyLogStop, ramTestAndClearDirty, ramDirtyPageCount,
  ramForEachWrittenPage, ramLoadPage, ramLoadChunk, ramWriteBytes, ramReadBytes, ramZeroRange, ramDiscardAll,
} from './ram.ts';
export type { Ram, ReservationHolder } from './ram.ts';
export { EM_RISCV, isElf, elfParse, loadKernel } from './loader.ts';
export type { ElfSegment, LoadedKernel } from './loader.ts';
