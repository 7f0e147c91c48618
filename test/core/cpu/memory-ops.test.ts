// Loads and stores: widths and sign extension, misaligned accesses (performed, as QEMU 7.2 does
// on riscv), access faults for unmapped addresses (mtval = address), MMIO dispatch with QEMU's
// access-validity rules, and stores that overwrite already-decoded code.
// Method: hand-encoded programs run to WFI against an address space with fake MMIO regions.
import { describe, expect, it } from 'vitest';
import {
  addressSpaceAddRegion,
  addressSpaceLd,
  addressSpaceWrite,
} from '../../../core/memory/index.ts';
import { cpuExec } from '../../../core/cpu/index.ts';
import * as A from './asm.ts';
import { RAM, makeRig, runProgram, s32, u32, wordsToBytes } from './support.ts';

const { R } = A;
const DATA = RAM + 0x8000;

function withData(bytes: number[]) {
  return (r: ReturnType<typeof makeRig>): void => {
    addressSpaceWrite(r.as, DATA, Uint8Array.from(bytes));
  };
}

describe('loads', () => {
  it('sign- or zero-extend bytes and halfwords', () => {
    const rig = runProgram(
      [
        ...A.li(R.a0, DATA),
        A.lb(R.a1, R.a0, 0),
        A.lbu(R.a2, R.a0, 0),
        A.lh(R.a3, R.a0, 2),
        A.lhu(R.a4, R.a0, 2),
        A.lw(R.a5, R.a0, 0),
        A.lb(R.a6, R.a0, 1),
        A.wfi(),
      ],
      withData([0x80, 0x7f, 0xfe, 0xff]),
    );
    expect(s32(rig, R.a1)).toBe(-128);
    expect(s32(rig, R.a2)).toBe(0x80);
    expect(s32(rig, R.a3)).toBe(-2);
    expect(s32(rig, R.a4)).toBe(0xfffe);
    expect(u32(rig, R.a5)).toBe(0xfffe7f80);
    expect(s32(rig, R.a6)).toBe(0x7f);
  });
  it('read untouched RAM as zero', () => {
    const rig = runProgram([
      ...A.li(R.a0, RAM + 0xf0000),
      A.addi(R.a1, R.zero, 5),
      A.lw(R.a1, R.a0, 0),
      A.wfi(),
    ]);
    expect(s32(rig, R.a1)).toBe(0);
  });
  it('perform misaligned loads, also across a 64 KiB chunk boundary', () => {
    const rig = runProgram(
      [
        ...A.li(R.a0, DATA + 1),
        A.lw(R.a1, R.a0, 0),
        A.lh(R.a2, R.a0, 2),
        ...A.li(R.t0, RAM + 0x1_0000 - 2),
        A.lw(R.a3, R.t0, 0),
        A.wfi(),
      ],
      (r) => {
        withData([0x11, 0x22, 0x33, 0x44, 0x85])(r);
        addressSpaceWrite(r.as, RAM + 0x1_0000 - 2, Uint8Array.from([1, 2, 3, 4]));
      },
    );
    expect(u32(rig, R.a1)).toBe(0x85443322);
    expect(s32(rig, R.a2)).toBe(-31420); // 0x8544 sign-extended
    expect(u32(rig, R.a3)).toBe(0x04030201);
    expect(rig.cpu.mcause).toBe(0);
  });
  it('fault with cause 5 and mtval = address when nothing is mapped', () => {
    const rig = runProgram(
      [...A.li(R.a0, 0x4000_0000), A.lw(R.a1, R.a0, 8), A.wfi(), A.wfi()],
      (r) => {
        r.cpu.mtvec = RAM + 16;
      },
    );
    expect([rig.cpu.mcause, rig.cpu.mepc, rig.cpu.mtval]).toEqual([5, RAM + 8, 0x4000_0008]);
  });
  it('fault past the end of RAM, including a word straddling it', () => {
    const end = RAM + (1 << 20);
    const rig = runProgram([...A.li(R.a0, end - 2), A.lw(R.a1, R.a0, 0), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 16;
    });
    expect([rig.cpu.mcause, rig.cpu.mtval]).toEqual([5, end - 2]);
  });
});

describe('stores', () => {
  it('write bytes, halfwords and words little-endian', () => {
    const rig = runProgram([
      ...A.li(R.a0, DATA),
      ...A.li(R.a1, 0x11223344),
      A.sw(R.a1, R.a0, 0),
      A.sh(R.a1, R.a0, 4),
      A.sb(R.a1, R.a0, 7),
      A.sw(R.a1, R.a0, 9),
      A.wfi(),
    ]);
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) out[i] = addressSpaceLd(rig.as, DATA + i, 1);
    expect(Array.from(out.subarray(0, 13))).toEqual([
      0x44, 0x33, 0x22, 0x11, 0x44, 0x33, 0, 0x44, 0, 0x44, 0x33, 0x22, 0x11,
    ]);
  });
  it('fault with cause 7 on unmapped addresses and leave memory alone', () => {
    const rig = runProgram([...A.li(R.a0, 0x3000), A.sw(R.a0, R.a0, 0), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 16;
    });
    expect([rig.cpu.mcause, rig.cpu.mtval]).toEqual([7, 0x3000]);
  });
  it('ignore writes to ROM', () => {
    const rig = makeRig([...A.li(R.a0, 0x1000), A.sw(R.a0, R.a0, 0), A.lw(R.a1, R.a0, 0), A.wfi()]);
    rig.as.roms.push({ name: 'mrom', base: 0x1000, data: new Uint8Array(16).fill(0xab) });
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect(u32(rig, R.a1)).toBe(0xabababab);
  });
});

describe('MMIO', () => {
  function rigWithDevice(program: number[]) {
    const rig = makeRig(program);
    const log: string[] = [];
    addressSpaceAddRegion(rig.as, {
      name: 'dev',
      base: 0x1000_0000,
      size: 0x100,
      minAccessSize: 1,
      maxAccessSize: 4,
      read: (off, size) => {
        log.push(`r${size}@${off}`);
        return 0xdeadbeef;
      },
      write: (off, size, v) => {
        log.push(`w${size}@${off}=${v.toString(16)}`);
        if (off === 0x80) rig.cpu.exitRequest = true;
      },
    });
    return { rig, log };
  }
  it('dispatches reads and writes with offset and size, truncating values', () => {
    const { rig, log } = rigWithDevice([
      ...A.li(R.a0, 0x1000_0000),
      A.lb(R.a1, R.a0, 5),
      A.lhu(R.a2, R.a0, 6),
      A.lw(R.a3, R.a0, 8),
      ...A.li(R.t0, -1),
      A.sb(R.t0, R.a0, 1),
      A.sw(R.t0, R.a0, 4),
      A.wfi(),
    ]);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect(log).toEqual(['r1@5', 'r2@6', 'r4@8', 'w1@1=ff', 'w4@4=ffffffff']);
    expect(s32(rig, R.a1)).toBe(-17); // 0xef sign-extended
    expect(u32(rig, R.a2)).toBe(0xbeef);
    expect(u32(rig, R.a3)).toBe(0xdeadbeef);
  });
  it('rejects misaligned MMIO accesses with an access fault (QEMU valid.unaligned = false)', () => {
    const { rig, log } = rigWithDevice([
      ...A.li(R.a0, 0x1000_0001),
      A.lw(R.a1, R.a0, 0),
      A.wfi(),
      A.wfi(),
    ]);
    rig.cpu.mtvec = RAM + 16;
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect([rig.cpu.mcause, rig.cpu.mtval, log.length]).toEqual([5, 0x1000_0001, 0]);
  });
  it('ends the slice right after an access whose device set exitRequest', () => {
    const { rig } = rigWithDevice([
      ...A.li(R.a0, 0x1000_0000),
      A.sw(R.a0, R.a0, 0x80),
      A.addi(R.a1, R.a1, 1),
      A.wfi(),
    ]);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('kick');
    expect(rig.cpu.exitRequest).toBe(false);
    expect(rig.cpu.icount).toBe(3);
    expect(rig.cpu.pc).toBe(RAM + 12);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect(s32(rig, R.a1)).toBe(1);
  });
});

describe('self-modifying code', () => {
  it('sees a store to an already-decoded instruction at once', () => {
    // Two passes over slots 6-10; the first pass rewrites slot 7 from +1 to +100.
    const patched = A.addi(R.a0, R.a0, 100);
    const code = [
      ...A.li(R.t0, RAM + 28),
      ...A.li(R.t1, patched), // 0..3
      A.addi(R.t2, R.zero, 2), // 4
      A.addi(R.t3, R.zero, 0), // 5
      A.addi(R.a0, R.a0, 1), // 6 (offset 24) <- not patched
      A.addi(R.a0, R.a0, 1), // 7 (offset 28) <- patched after the first pass
      A.sw(R.t1, R.t0, 0), // 8
      A.addi(R.t2, R.t2, -1), // 9
      A.bne(R.t2, R.zero, -16), // 10: back to slot 6
      A.wfi(),
    ];
    const rig = runProgram(code);
    expect(s32(rig, R.a0)).toBe(1 + 1 + 1 + 100);
  });
  it('keeps working after FENCE.I flushes the decode cache', () => {
    const rig = runProgram([
      A.addi(R.a0, R.a0, 1),
      A.fenceI(),
      A.addi(R.t0, R.t0, 1),
      ...A.li(R.t1, 3),
      A.blt(R.t0, R.t1, -20),
      A.wfi(),
    ]);
    expect(s32(rig, R.a0)).toBe(3);
  });
  it('decodes words written by the loader after a hart already ran there', () => {
    const rig = makeRig([A.wfi()]);
    expect(cpuExec(rig.cpu, rig.env, 10)).toBe('halt');
    addressSpaceWrite(rig.as, RAM, wordsToBytes([A.addi(R.a0, R.zero, 9), A.wfi()]));
    rig.cpu.pc = RAM;
    rig.cpu.halted = false;
    expect(cpuExec(rig.cpu, rig.env, 10)).toBe('halt');
    expect(s32(rig, R.a0)).toBe(9);
  });
});
