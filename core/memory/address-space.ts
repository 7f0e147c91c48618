// The system address space of the virt board: RAM (ram.ts), ROM blobs and the MMIO regions that
// devices register, with the slow-path loads and stores that the CPU uses for everything but
// aligned RAM accesses. Mirrors QEMU's address_space_* (softmmu/physmem.c) and
// memory_region_dispatch_* (softmmu/memory.c). Guest errors never throw: an access that hits
// nothing, or breaks a region's size/alignment rules, sets `txResult` to MEMTX_DECODE_ERROR.

import { assert } from '../util/index.ts';
import {
  RAM_BASE, RAM_CHUNK_BITS, RAM_CHUNK_SIZE, ramCreate, ramReadBytes, ramWatchHit, ramWriteBytes,
  type Ram,
} from './ram.ts';

/** QEMU MemTxResult values. */
export const MEMTX_OK = 0;
export const MEMTX_ERROR = 1;
export const MEMTX_DECODE_ERROR = 2;

/**
 * An MMIO region a device registers (QEMU MemoryRegion + MemoryRegionOps). `read` returns the
 * value zero-extended to `size` bytes; offsets are relative to `base`. The optional access rules
 * are QEMU's `ops->valid`: an access breaking them fails with a decode error (an access fault
 * for the CPU) and never reaches the device.
 */
export interface MemoryRegion {
  name: string;
  base: number;
  size: number;
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
  /** Smallest access in bytes (default 1). */
  minAccessSize?: number;
  /** Largest access in bytes (default 4). */
  maxAccessSize?: number;
  /** Whether accesses not aligned to their size are allowed (default false, as in QEMU). */
  unaligned?: boolean;
}

/** Read-only memory (the reset-vector MROM): readable and executable, writes are ignored. */
export interface RomRegion {
  name: string;
  base: number;
  data: Uint8Array;
}

/** The address space: RAM plus regions. Runtime wiring, not snapshot state. */
export interface AddressSpace extends Ram {
  regions: MemoryRegion[];
  roms: RomRegion[];
  /** Result of the last slow-path access (addressSpaceLd/St/Fetch). */
  txResult: number;
}

/** Create an address space with `ramSizeBytes` of RAM at 0x80000000 and nothing else. */
export function addressSpaceCreate(ramSizeBytes: number): AddressSpace {
  return { ...ramCreate(RAM_BASE, ramSizeBytes), regions: [], roms: [], txResult: MEMTX_OK };
}

function overlaps(as: AddressSpace, base: number, size: number): string | null {
  const end = base + size;
  if (base < as.ramBase + as.ramSize && as.ramBase < end) return 'RAM';
  for (const r of as.regions) if (base < r.base + r.size && r.base < end) return r.name;
  for (const r of as.roms) if (base < r.base + r.data.length && r.base < end) return r.name;
  return null;
}

/**
 * Map an MMIO region. Regions may not overlap RAM, ROM or each other.
 * @qemu softmmu/memory.c memory_region_add_subregion
 */
export function addressSpaceAddRegion(as: AddressSpace, region: MemoryRegion): void {
  assert(Number.isInteger(region.base) && region.base >= 0, `region ${region.name}: bad base`);
  const fits = region.size > 0 && region.base + region.size <= 0x1_0000_0000;
  assert(fits, `region ${region.name}: bad size`);
  const clash = overlaps(as, region.base, region.size);
  assert(clash === null, `region ${region.name} overlaps ${clash}`);
  as.regions.push(region);
  as.regions.sort((a, b) => a.base - b.base);
}

/** Map a ROM blob (copied). @qemu hw/core/loader.c rom_add_blob_fixed_as */
export function addressSpaceAddRom(
  as: AddressSpace, name: string, base: number, data: Uint8Array,
): void {
  assert(data.length > 0 && base + data.length <= 0x1_0000_0000, `ROM ${name}: bad placement`);
  const clash = overlaps(as, base, data.length);
  assert(clash === null, `ROM ${name} overlaps ${clash}`);
  as.roms.push({ name, base, data: data.slice() });
}

function findRegion(as: AddressSpace, addr: number, size: number): MemoryRegion | null {
  for (const r of as.regions) {
    if (addr >= r.base && addr + size <= r.base + r.size) return r;
  }
  return null;
}

function findRom(as: AddressSpace, addr: number, size: number): RomRegion | null {
  for (const r of as.roms) {
    if (addr >= r.base && addr + size <= r.base + r.data.length) return r;
  }
  return null;
}

/** QEMU memory_region_access_valid. */
function accessValid(r: MemoryRegion, addr: number, size: number): boolean {
  if (size < (r.minAccessSize ?? 1) || size > (r.maxAccessSize ?? 4)) return false;
  return r.unaligned === true || (addr & (size - 1)) === 0;
}

function ramLdBytes(as: AddressSpace, off: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) {
    const o = off + i;
    v = (v << 8) | (as.ram8[o >>> RAM_CHUNK_BITS]?.[o & (RAM_CHUNK_SIZE - 1)] ?? 0);
  }
  return v >>> 0;
}

/**
 * Load `size` (1, 2 or 4) bytes, little-endian, from guest physical address `addr` and return
 * them zero-extended (0 .. 2^32-1). Misaligned RAM accesses are performed (QEMU allows them on
 * riscv). On failure returns 0 and sets `as.txResult`; on success sets it to MEMTX_OK.
 * @qemu softmmu/physmem.c address_space_ldl (and ldub, lduw)
 */
export function addressSpaceLd(as: AddressSpace, addr: number, size: number): number {
  addr >>>= 0;
  as.txResult = MEMTX_OK;
  const off = addr - as.ramBase;
  if (off >= 0 && off + size <= as.ramSize) return ramLdBytes(as, off, size);
  const rom = findRom(as, addr, size);
  if (rom !== null) {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | (rom.data[addr - rom.base + i] ?? 0);
    return v >>> 0;
  }
  const r = findRegion(as, addr, size);
  if (r === null || !accessValid(r, addr, size)) {
    as.txResult = MEMTX_DECODE_ERROR;
    return 0;
  }
  const mask = size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
  return (r.read(addr - r.base, size) & mask) >>> 0;
}

/**
 * Store the low `size` (1, 2 or 4) bytes of `value` at `addr`, little-endian. Writes to ROM are
 * ignored, as QEMU ignores them. Sets `as.txResult`.
 * @qemu softmmu/physmem.c address_space_stl (and stb, stw)
 */
export function addressSpaceSt(as: AddressSpace, addr: number, size: number, value: number): void {
  addr >>>= 0;
  as.txResult = MEMTX_OK;
  const off = addr - as.ramBase;
  if (off >= 0 && off + size <= as.ramSize) {
    ramWatchHit(as, off, size);
    for (let i = 0; i < size; i++) {
      const o = off + i;
      const chunk = as.ram8[o >>> RAM_CHUNK_BITS];
      assert(chunk !== undefined && chunk !== as.zero8, 'store to an unallocated chunk');
      chunk[o & (RAM_CHUNK_SIZE - 1)] = value >>> (8 * i);
    }
    return;
  }
  if (findRom(as, addr, size) !== null) return;
  const r = findRegion(as, addr, size);
  if (r === null || !accessValid(r, addr, size)) {
    as.txResult = MEMTX_DECODE_ERROR;
    return;
  }
  const mask = size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
  r.write(addr - r.base, size, (value & mask) >>> 0);
}

/**
 * Fetch a 32-bit instruction word from RAM or ROM (MMIO is not executable: QEMU raises an
 * instruction access fault). Returns the word as an int32; sets `as.txResult`.
 */
export function addressSpaceFetch(as: AddressSpace, addr: number): number {
  addr >>>= 0;
  const off = addr - as.ramBase;
  if ((off >= 0 && off + 4 <= as.ramSize) || findRom(as, addr, 4) !== null) {
    return addressSpaceLd(as, addr, 4) | 0;
  }
  as.txResult = MEMTX_DECODE_ERROR;
  return 0;
}

/**
 * Copy `bytes` to guest physical memory at `addr`, byte by byte through MMIO where it is not
 * RAM (QEMU address_space_write). Returns MEMTX_OK, or MEMTX_DECODE_ERROR if any byte hit
 * nothing (the bytes before it are written).
 */
export function addressSpaceWrite(as: AddressSpace, addr: number, bytes: Uint8Array): number {
  const off = addr - as.ramBase;
  if (off >= 0 && off + bytes.length <= as.ramSize) {
    ramWriteBytes(as, off, bytes);
    return MEMTX_OK;
  }
  for (let i = 0; i < bytes.length; i++) {
    addressSpaceSt(as, addr + i, 1, bytes[i] ?? 0);
    if (as.txResult !== MEMTX_OK) return as.txResult;
  }
  return MEMTX_OK;
}

/** Copy guest physical memory at `addr` into `out` (QEMU address_space_read). */
export function addressSpaceRead(as: AddressSpace, addr: number, out: Uint8Array): number {
  const off = addr - as.ramBase;
  if (off >= 0 && off + out.length <= as.ramSize) {
    ramReadBytes(as, off, out);
    return MEMTX_OK;
  }
  for (let i = 0; i < out.length; i++) {
    out[i] = addressSpaceLd(as, addr + i, 1);
    if (as.txResult !== MEMTX_OK) return as.txResult;
  }
  return MEMTX_OK;
}
