// Kernel loading as `-M virt -bios none -kernel FILE`: ELF32 LE RISC-V PT_LOAD segments (file
// bytes copied, bss zeroed), raw images at RAM start, and errors naming the file for non-ELF-
// class/machine mismatches, truncation and segments outside RAM (nothing written then).
// Method: ELF images built in memory by a small writer.
import { describe, expect, it } from 'vitest';
import {
  RAM_BASE,
  addressSpaceCreate,
  addressSpaceLd,
  addressSpaceSt,
  loadKernel,
} from '../../../core/memory/index.ts';

interface Seg {
  paddr: number;
  data: number[];
  memSize?: number;
  type?: number;
}

/** Build an ELF32 LE file with the given segments (program headers right after the header). */
function elf(
  segs: Seg[],
  opts: { machine?: number; cls?: number; data?: number; entry?: number } = {},
): Uint8Array {
  const phoff = 52;
  let off = phoff + 32 * segs.length;
  const size = off + segs.reduce((n, s) => n + s.data.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, opts.cls ?? 1, opts.data ?? 1, 1]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, opts.machine ?? 243, true);
  dv.setUint32(20, 1, true);
  dv.setUint32(24, opts.entry ?? RAM_BASE, true);
  dv.setUint32(28, phoff, true);
  dv.setUint16(40, 52, true);
  dv.setUint16(42, 32, true);
  dv.setUint16(44, segs.length, true);
  segs.forEach((s, i) => {
    const p = phoff + 32 * i;
    dv.setUint32(p, s.type ?? 1, true);
    dv.setUint32(p + 4, off, true);
    dv.setUint32(p + 8, s.paddr, true);
    dv.setUint32(p + 12, s.paddr, true);
    dv.setUint32(p + 16, s.data.length, true);
    dv.setUint32(p + 20, s.memSize ?? s.data.length, true);
    b.set(s.data, off);
    off += s.data.length;
  });
  return b;
}

describe('loadKernel', () => {
  it('loads PT_LOAD segments, zeroes bss over old contents, skips other segments', () => {
    const as = addressSpaceCreate(1 << 20);
    addressSpaceSt(as, RAM_BASE + 0x1004, 4, -1); // stale data where bss goes
    const k = loadKernel(
      as,
      elf(
        [
          { paddr: RAM_BASE, data: [1, 2, 3, 4] },
          { paddr: RAM_BASE + 0x1000, data: [5, 6, 7, 8], memSize: 0x2000 },
          { paddr: 0x100, data: [9], type: 4 }, // PT_NOTE: ignored even though outside RAM
        ],
        { entry: RAM_BASE + 0x10 },
      ),
      'k.elf',
    );
    expect(k).toEqual({
      kind: 'elf',
      entry: RAM_BASE + 0x10,
      ranges: [
        { addr: RAM_BASE, size: 4 },
        { addr: RAM_BASE + 0x1000, size: 0x2000 },
      ],
    });
    expect(addressSpaceLd(as, RAM_BASE, 4)).toBe(0x04030201);
    expect(addressSpaceLd(as, RAM_BASE + 0x1000, 4)).toBe(0x08070605);
    expect(addressSpaceLd(as, RAM_BASE + 0x1004, 4)).toBe(0);
    expect(as.writtenPages).toBe(2); // bss pages that were never written are not allocated
  });
  it('loads a non-ELF file as a raw image at 0x80000000', () => {
    const as = addressSpaceCreate(1 << 20);
    const k = loadKernel(as, Uint8Array.from([0x13, 0, 0, 0]), 'Image');
    expect(k).toEqual({ kind: 'raw', entry: RAM_BASE, ranges: [{ addr: RAM_BASE, size: 4 }] });
    expect(addressSpaceLd(as, RAM_BASE, 4)).toBe(0x13);
  });
  const errors: Array<[string, Uint8Array, RegExp]> = [
    ['ELF64', elf([{ paddr: RAM_BASE, data: [1] }], { cls: 2 }), /'bad.elf': ELF64/],
    ['big-endian', elf([{ paddr: RAM_BASE, data: [1] }], { data: 2 }), /big-endian/],
    [
      'wrong machine',
      elf([{ paddr: RAM_BASE, data: [1] }], { machine: 62 }),
      /machine 62 is not RISC-V/,
    ],
    [
      'truncated header',
      elf([{ paddr: RAM_BASE, data: [1] }]).slice(0, 40),
      /truncated ELF header/,
    ],
    [
      'truncated segment',
      elf([{ paddr: RAM_BASE, data: [1, 2, 3, 4] }]).slice(0, 86),
      /segment 0: truncated/,
    ],
    [
      'segment below RAM',
      elf([{ paddr: 0x1000, data: [1] }]),
      /segment at 0x1000\.\.0x1001 is outside RAM 0x80000000\.\.0x80100000/,
    ],
    [
      'segment past RAM',
      elf([{ paddr: RAM_BASE + (1 << 20) - 2, data: [1, 2, 3] }]),
      /outside RAM/,
    ],
    ['raw image too big', new Uint8Array((1 << 20) + 1), /do not fit/],
    ['empty file', new Uint8Array(0), /empty file/],
  ];
  for (const [what, bytes, re] of errors) {
    it(`rejects ${what} with a message naming the file, writing nothing`, () => {
      const as = addressSpaceCreate(1 << 20);
      expect(() => loadKernel(as, bytes, 'bad.elf')).toThrow(re);
      expect(() => loadKernel(as, bytes, 'bad.elf')).toThrow(/could not load kernel 'bad\.elf'/);
      expect(as.writtenPages).toBe(0);
    });
  }
});
