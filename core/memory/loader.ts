// Kernel loading for `-M virt -bios none -kernel FILE`: an ELF32 little-endian RISC-V executable
// (PT_LOAD segments at their physical addresses, entry from the header) or a raw image at the
// start of RAM. Mirrors hw/core/loader.c load_elf / load_image_targphys and hw/riscv/boot.c
// riscv_load_kernel. No file system access: the caller reads the file and passes its bytes.
// Invariant: a load either succeeds completely or throws before writing anything.

import { addressSpaceWrite, type AddressSpace } from './address-space.ts';
import { ramZeroRange } from './ram.ts';

export const EM_RISCV = 243;
const PT_LOAD = 1;
const ELF_HEADER_SIZE = 52;
const PROGRAM_HEADER_SIZE = 32;

/** One PT_LOAD segment: `fileSize` bytes from the file, then zeros up to `memSize`. */
export interface ElfSegment {
  paddr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

/** What loadKernel did: where execution starts and which bytes it wrote. */
export interface LoadedKernel {
  kind: 'elf' | 'raw';
  entry: number;
  /** Written ranges [addr, addr+size), in file order. */
  ranges: Array<{ addr: number; size: number }>;
}

/** True if `bytes` start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46
  );
}

/**
 * Parse and validate an ELF32 LE RISC-V executable's header and PT_LOAD segments.
 * Throws an Error naming `fileName` if it is not ELF, is ELF64 or big-endian, is not for
 * RISC-V, or is truncated.
 */
export function elfParse(
  bytes: Uint8Array, fileName: string,
): { entry: number; segments: ElfSegment[] } {
  const fail = (what: string): never => {
    throw new Error(`could not load kernel '${fileName}': ${what}`);
  };
  if (!isElf(bytes)) fail('not an ELF file');
  if (bytes.length < ELF_HEADER_SIZE) fail(`truncated ELF header (${bytes.length} bytes)`);
  if (bytes[4] === 2) fail('ELF64 file; riscv32 needs ELFCLASS32');
  if (bytes[4] !== 1) fail(`unknown ELF class ${bytes[4]}`);
  if (bytes[5] !== 1) fail('big-endian ELF; riscv32 needs ELFDATA2LSB');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) fail(`ELF machine ${machine} is not RISC-V (${EM_RISCV})`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phnum === 0) fail('no program headers');
  if (phentsize < PROGRAM_HEADER_SIZE) fail(`program header size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > bytes.length) fail('truncated program header table');
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (dv.getUint32(p, true) !== PT_LOAD) continue;
    const seg: ElfSegment = {
      fileOffset: dv.getUint32(p + 4, true),
      paddr: dv.getUint32(p + 12, true),
      fileSize: dv.getUint32(p + 16, true),
      memSize: dv.getUint32(p + 20, true),
    };
    if (seg.fileSize > seg.memSize) fail(`segment ${i}: file size exceeds memory size`);
    if (seg.fileOffset + seg.fileSize > bytes.length) {
      const need = seg.fileOffset + seg.fileSize;
      fail(`segment ${i}: truncated (needs ${need} bytes, file has ${bytes.length})`);
    }
    if (seg.memSize > 0) segments.push(seg);
  }
  if (segments.length === 0) fail('no loadable segments');
  return { entry, segments };
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/**
 * Load a kernel into RAM the way `qemu-system-riscv32 -M virt -bios none -kernel FILE` does: an
 * ELF file by its PT_LOAD segments (p_paddr, as QEMU's load_elf), anything else as a raw image
 * at the start of RAM (entry = 0x80000000). Throws an Error naming `fileName` for a bad ELF, a
 * segment outside RAM, or an image larger than RAM; nothing is written then.
 * Deviation: QEMU falls back to a raw load when an ELF is for another machine or class; detvm
 * rejects such a file instead, since running it as raw code is never what was meant.
 * @qemu hw/riscv/boot.c riscv_load_kernel
 */
export function loadKernel(as: AddressSpace, bytes: Uint8Array, fileName: string): LoadedKernel {
  const ramEnd = as.ramBase + as.ramSize;
  if (!isElf(bytes)) {
    if (bytes.length === 0) throw new Error(`could not load kernel '${fileName}': empty file`);
    if (bytes.length > as.ramSize) {
      throw new Error(
        `could not load kernel '${fileName}': ${bytes.length} bytes do not fit in ` +
          `${as.ramSize} bytes of RAM`,
      );
    }
    addressSpaceWrite(as, as.ramBase, bytes);
    return { kind: 'raw', entry: as.ramBase, ranges: [{ addr: as.ramBase, size: bytes.length }] };
  }
  const { entry, segments } = elfParse(bytes, fileName);
  for (const s of segments) {
    if (s.paddr < as.ramBase || s.paddr + s.memSize > ramEnd) {
      throw new Error(
        `could not load kernel '${fileName}': segment at ` +
          `${hex(s.paddr)}..${hex(s.paddr + s.memSize)} ` +
          `is outside RAM ${hex(as.ramBase)}..${hex(ramEnd)}`,
      );
    }
  }
  const ranges: LoadedKernel['ranges'] = [];
  for (const s of segments) {
    addressSpaceWrite(as, s.paddr, bytes.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    // The bss part: RAM that was never written already reads as zero, so this allocates nothing.
    ramZeroRange(as, s.paddr + s.fileSize - as.ramBase, s.memSize - s.fileSize);
    ranges.push({ addr: s.paddr, size: s.memSize });
  }
  return { kind: 'elf', entry, ranges };
}
